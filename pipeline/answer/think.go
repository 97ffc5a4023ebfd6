package answer

import "strings"

// SplitThink separates a reasoning model's chain of thought from its answer.
// The answer is what follows the last </think>: a model's final answer comes
// after all of its thinking, and DeepSeek-R1-0528's chat template opens the
// block itself, so its output often holds a closing tag and no opening one.
// Taking the last closing tag means a </think> quoted from the thought inside
// the thinking cannot end the thinking early. An opening tag that is never
// closed (the token budget ran out mid-thought) makes the rest reasoning.
// Both parts are returned trimmed, the tags removed from the reasoning.
func SplitThink(content string) (answer, reasoning string) {
	const open, closeTag = "<think>", "</think>"
	think := ""
	if i := strings.LastIndex(content, closeTag); i >= 0 {
		think, content = content[:i], content[i+len(closeTag):]
	}
	if i := strings.Index(content, open); i >= 0 {
		think += "\n" + content[i+len(open):]
		content = content[:i]
	}
	if think != "" {
		think = strings.NewReplacer(open, "\n", closeTag, "\n").Replace(think)
		lines := strings.Split(think, "\n")
		kept := lines[:0]
		for _, l := range lines {
			if l = strings.TrimSpace(l); l != "" {
				kept = append(kept, l)
			}
		}
		think = strings.Join(kept, "\n")
	}
	return strings.TrimSpace(content), think
}
