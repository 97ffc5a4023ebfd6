// Package text bounds the text that pipeline and its answer reader copy
// into what they publish: a model's thinking in an output, a judge's words
// in an error.
package text
