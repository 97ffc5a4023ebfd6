// Package cli holds what noesis's commands share: reading the config named
// by --env-file, the logger, tables, the terminal check and escaping what
// agents wrote before it reaches a terminal (escape.go).
package cli
