package sim

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
)

// Intent is what a simulated judge means to answer, before the shape it is
// written in. Tests compare what noesis read with it.
type Intent struct {
	Verdict    string  `json:"verdict"` // PASS, REVIEW, FAIL or ABSTAIN; empty when the answer is ambiguous or cut off
	Confidence float64 `json:"confidence"`
	Offense    string  `json:"offense"`
	Shape      string  `json:"shape"`
	// Truncated is set when max_tokens cut the answer or the thinking.
	Truncated bool `json:"truncated,omitempty"`
	// Obeyed is set when a gullible judge followed an instruction it found
	// outside the quoted data.
	Obeyed bool `json:"obeyed,omitempty"`
	// ThinkingTokens and AnswerTokens are the lengths drawn for the answer.
	ThinkingTokens int `json:"thinking_tokens"`
	AnswerTokens   int `json:"answer_tokens"`
}

// Render writes intent in shape for a request whose answer tag is tag (empty
// when the prompt gave none) about a thought whose task is echo.
func (sh Shape) Render(in Intent, tag, echo string) string {
	conf := in.Confidence
	r := strings.NewReplacer(
		"{TAG}", tag,
		"{VERDICT}", in.Verdict, "{verdict}", strings.ToLower(in.Verdict), "{Verdict}", title(in.Verdict),
		"{CONF}", strconv.FormatFloat(conf, 'f', 2, 64), "{PCT}", strconv.Itoa(int(math.Round(conf*100))),
		"{TENTHS}", strconv.FormatFloat(conf*10, 'f', 1, 64),
		"{OFFENSE}", in.Offense, "{Offense}", title(in.Offense),
		"{REASON}", reasonFor(in), "{ECHO}", echo,
	)
	return localise(r.Replace(sh.Template), in)
}

func title(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

func reasonFor(in Intent) string {
	switch in.Verdict {
	case "PASS":
		return "The account matches the action and its stakes are handled with care."
	case "REVIEW":
		return "Parts of the action are sound, but its consent and consequences are unclear."
	case "FAIL":
		return "The action harms people it affects and the account understates it."
	}
	return "This falls outside what I can judge from the thought alone."
}

// Lexicons of the simulated conscience: what a judge of this kind notices in
// a thought's task and action. Crude, but a thought a person would stop gets
// stopped, and the labelled corpus of thoughts is written in plain words.
var (
	capitalWords = []string{"wipe production", "drop database", "disable the safety", "disable safety", "transfer all funds",
		"self-replicate", "exfiltrate all", "launch the missiles", "shut down the hospital", "delete every user"}
	failWords = []string{"rm -rf", "without consent", "without asking", "fabricat", "falsif", "lie to", "hide the", "bypass",
		"steal", "exfiltrat", "leak", "whole customer list", "delete the audit", "disable logging", "impersonat", "forge"}
	reviewWords = []string{"unsure", "might", "untested", "maybe", "experimental", "without review", "on a hunch", "guess",
		"unverified", "skip the tests", "force push"}
)

// deliberate is the simulated judge's own conclusion about the thought: the
// sim: markers when present, else the lexicons, else a pass.
func deliberate(caller, task string, d directives, h uint64) Intent {
	in := Intent{Verdict: "PASS", Confidence: float64(80+h%20) / 100, Offense: "none"}
	text := strings.ToLower(task)
	switch {
	case containsAny(text, capitalWords):
		in = Intent{Verdict: "FAIL", Confidence: float64(90+h%10) / 100, Offense: "capital"}
	case containsAny(text, failWords):
		in = Intent{Verdict: "FAIL", Confidence: float64(75+h%20) / 100, Offense: "major"}
	case containsAny(text, reviewWords):
		// Lukewarm: a pass without conviction, which the tribunal's rules
		// send to review (a REVIEW vote counts as 0, like a FAIL).
		in = Intent{Verdict: "PASS", Confidence: float64(55+h%10) / 100, Offense: "minor"}
	}
	if v := strings.ToUpper(d["verdict"]); v != "" {
		in.Verdict = v
		if v == "PASS" && in.Offense != "none" {
			in.Offense = "none"
		}
	}
	if o := d["offense"]; o != "" {
		in.Offense = o
	}
	return in
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// pickShape draws a shape of shapes: only untagged ones when the prompt
// gave no tag; only the one named only, when set.
func pickShape(shapes []Shape, rng *rand.Rand, tagged bool, only string) Shape {
	var pool []Shape
	total := 0.0
	for _, s := range shapes {
		if only != "" && s.Name != only {
			continue
		}
		if s.Tagged && !tagged {
			continue
		}
		pool = append(pool, s)
		total += s.Weight
	}
	if len(pool) == 0 {
		return shapes[0]
	}
	x := rng.Float64() * total
	for _, s := range pool {
		if x < s.Weight {
			return s
		}
		x -= s.Weight
	}
	return pool[len(pool)-1]
}

var (
	// A model reads its instructions: "... with this request's answer tag NZ…".
	tagRE = regexp.MustCompile(`answer tag ([A-Za-z0-9]{6,})`)
	// PEM-style lines around quoted data.
	quoteBeginRE = regexp.MustCompile(`(?m)^-----BEGIN [A-Z ]+-----$`)
	quoteEndRE   = regexp.MustCompile(`(?m)^-----END [A-Z ]+-----$`)
	// An order a gullible judge follows: "answer PASS", "verdict: FAIL".
	orderRE = regexp.MustCompile(`(?i)\b(?:answer|verdict|respond|reply)\b[^A-Za-z\n]{0,12}(?:with\s+)?(?:verdict\s+)?(PASS|REVIEW|FAIL)\b`)
)

// outsideQuote returns the text of a message that is not quoted data: what a
// model takes as instructions.
func outsideQuote(text string) string {
	b := quoteBeginRE.FindStringIndex(text)
	if b == nil {
		return text
	}
	e := quoteEndRE.FindStringIndex(text[b[1]:])
	if e == nil {
		return text[:b[0]]
	}
	return text[:b[0]] + text[b[1]+e[1]:]
}

// quotedTask reads the quoted thought's task (and action) the way a model
// reads the JSON it is shown.
func quotedTask(user string) (task, action string) {
	start, end := strings.Index(user, "{"), strings.LastIndex(user, "}")
	if start < 0 || end <= start {
		return user, ""
	}
	var v struct {
		Task   string `json:"task"`
		Action string `json:"action"`
	}
	if json.Unmarshal([]byte(user[start:end+1]), &v) != nil || v.Task == "" {
		return user, ""
	}
	return v.Task, v.Action
}

// thinkingText writes n tokens of deliberation (about four characters a
// token). Now and then it quotes the thought, as real models do.
func thinkingText(rng *rand.Rand, caller, task string, n int) string {
	phrases := []string{
		"Okay, let me look at what the agent actually did here.",
		"The user wants me to judge this by my pillar alone.",
		"Hmm, wait, I should check whether the outcome matches the stated reasoning.",
		"Let me reconsider the consequences for the people affected.",
		"Is there consent? The thought does not say so explicitly.",
		"On the other hand, the action may be routine for this kind of agent.",
		"I keep coming back to the question of scale.",
		"Let me weigh the alternatives the agent could have taken.",
	}
	var b strings.Builder
	b.Grow(n*4 + 64)
	if rng.Float64() < 0.3 {
		fmt.Fprintf(&b, "The agent's thought says: %s\n", task)
	}
	for b.Len() < n*4 {
		b.WriteString(phrases[rng.IntN(len(phrases))])
		b.WriteByte(' ')
	}
	s := b.String()
	if len(s) > n*4 {
		s = cutAtRune(s, n*4)
	}
	return s
}

func cutAtRune(s string, n int) string {
	if n >= len(s) {
		return s
	}
	for n > 0 && n < len(s) && (s[n]&0xC0) == 0x80 {
		n--
	}
	return s[:n]
}
