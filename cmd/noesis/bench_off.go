//go:build nobench

package main

import "github.com/spf13/cobra"

// benchCommands is empty in a binary built with -tags nobench (the container
// image): the load harness, its charts and its fonts stay out of it.
func benchCommands() []*cobra.Command { return nil }
