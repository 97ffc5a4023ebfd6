//go:build !nobench

package main

import (
	"github.com/spf13/cobra"

	"github.com/noesis-dev/noesis/cmd/internal/bench"
)

func benchCommands() []*cobra.Command { return []*cobra.Command{bench.Command()} }
