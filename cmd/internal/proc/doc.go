// Package proc supervises child processes for noesis's harnesses (the chaos
// runs, the pipeline bench): start one with its output captured, stop it
// gently or at once, know when it has exited.
package proc
