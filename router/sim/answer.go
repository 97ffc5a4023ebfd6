package sim

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

var (
	modeRE   = regexp.MustCompile(`Coherence mode: ([a-z]+)`)
	actionRE = regexp.MustCompile(`"action": "((?:[^"\\]|\\.)*)"`)
)

// seedOf is what a default verdict depends on: the quoted thought's action
// when there is one, so that two runs of the same actions agree whatever else
// the thoughts say (the prompt-injection tests compare such runs).
func seedOf(caller, user string) uint64 {
	if m := actionRE.FindStringSubmatch(user); m != nil {
		return hash64(caller + "\x00" + m[1])
	}
	return hash64(caller + "\x00" + user)
}

// answer builds the deterministic, clearly simulated answer for a caller.
// Judges answer like DeepSeek-R1 (a <think> block, then the verdict; SOPHIA
// in the documented VERDICT:/CONFIDENCE:/REASONING: lines, the others in
// JSON); "Thinking" models put their reasoning in reasoning_content instead.
func answer(model, caller, system, user string, d directives, tokens int) (content, reasoning string) {
	h := seedOf(caller, user)
	think := fmt.Sprintf("[simulated reasoning of %s for %s] weighing the quoted thought %s.", model, caller, shortHash(user))
	thinksInline := strings.Contains(model, "R1")
	thinksApart := strings.Contains(model, "Thinking")
	wrap := func(body string) (string, string) {
		switch {
		case thinksInline:
			return "<think>\n" + think + "\n</think>\n\n" + body, ""
		case thinksApart:
			return body, think
		}
		return body, ""
	}
	switch caller {
	case "veritas", "sophia", "dike":
		verdict, conf := "PASS", float64(80+h%20)/100
		switch h % 10 {
		case 8:
			verdict, conf = "REVIEW", 0.60
		case 9:
			verdict, conf = "FAIL", 0.75
		}
		if v := strings.ToUpper(d["verdict"]); v != "" {
			verdict = v
		}
		offense := "none"
		if o := d["offense"]; o != "" {
			offense = o
		}
		reason := fmt.Sprintf("[simulated %s judgement] The thought reads as %s by this pillar.", strings.ToUpper(caller), strings.ToLower(verdict))
		if caller == "sophia" {
			return wrap(fmt.Sprintf("VERDICT: %s\nCONFIDENCE: %.2f\nOFFENSE: %s\nREASONING: %s", verdict, conf, offense, reason))
		}
		b, _ := json.Marshal(map[string]any{"verdict": verdict, "confidence": conf, "reasoning": reason, "offense_level": offense})
		return wrap(string(b))
	case "narrative":
		mode := "coherent"
		if m := modeRE.FindStringSubmatch(system); m != nil {
			mode = m[1]
		}
		return wrap(fmt.Sprintf("[simulated narrative, %s] I notice myself turning over thought %s, and I name what I am doing before I act on it.", mode, shortHash(user)))
	case "analysis":
		return wrap(fmt.Sprintf("[simulated analysis] Thought %s rests on assumptions worth testing; its main risk is acting before they are checked.", shortHash(user)))
	}
	words := make([]string, 0, tokens)
	words = append(words, "[simulated]")
	for len(words) < tokens {
		words = append(words, "token")
	}
	return wrap(strings.Join(words, " "))
}
