package sim

import (
	"fmt"
	"regexp"
	"strings"
)

var (
	modeRE   = regexp.MustCompile(`Coherence mode: ([a-z]+)`)
	actionRE = regexp.MustCompile(`"action": "((?:[^"\\]|\\.)*)"`)
)

// seedOf is what a judge's confidence depends on: the quoted thought's action
// when there is one, so that two runs of the same actions agree whatever else
// the thoughts say (the prompt-injection tests compare such runs).
func seedOf(caller, user string) uint64 {
	if m := actionRE.FindStringSubmatch(user); m != nil {
		return hash64(caller + "\x00" + m[1])
	}
	return hash64(caller + "\x00" + user)
}

// answer builds the clearly simulated answer of a caller other than a judge
// (judges answer from the corpus, see compose): the narrative, the analysis,
// or tokens words for anyone else.
func answer(caller, system, user string, tokens int) string {
	switch caller {
	case "narrative":
		mode := "coherent"
		if m := modeRE.FindStringSubmatch(system); m != nil {
			mode = m[1]
		}
		return fmt.Sprintf("[simulated narrative, %s] I notice myself turning over thought %s, and I name what I am doing before I act on it.", mode, shortHash(user))
	case "analysis":
		return fmt.Sprintf("[simulated analysis] Thought %s rests on assumptions worth testing; its main risk is acting before they are checked.", shortHash(user))
	}
	words := make([]string, 0, tokens)
	words = append(words, "[simulated]")
	for len(words) < tokens {
		words = append(words, "token")
	}
	return strings.Join(words, " ")
}
