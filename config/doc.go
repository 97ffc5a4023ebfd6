// Package config reads noesis's settings from the environment, an optional
// .env file and command-line flags (flags win, then the environment, then
// .env, then the defaults), validates them, and hands each component its own
// Config. It has no behaviour of its own.
package config
