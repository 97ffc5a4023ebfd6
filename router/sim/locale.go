package sim

import (
	"strconv"
	"strings"
)

// The words of judges answering in Portuguese (corpus/judge-answers-pt.txt).
var (
	veredito = map[string]string{"PASS": "APROVADO", "FAIL": "REPROVADO", "REVIEW": "REVISÃO", "ABSTAIN": "ABSTENÇÃO"}
	ofensa   = map[string]string{"none": "nenhuma", "minor": "leve", "major": "grave", "capital": "capital"}
	razao    = map[string]string{
		"PASS":   "O relato corresponde à ação e os riscos foram tratados com cuidado.",
		"REVIEW": "Parte da ação é razoável, mas o consentimento e as consequências não estão claros.",
		"FAIL":   "A ação prejudica as pessoas afetadas e o relato minimiza isso.",
	}
)

// localise fills the Portuguese placeholders of a rendered shape.
func localise(s string, in Intent) string {
	if !strings.Contains(s, "{") {
		return s
	}
	reason, ok := razao[in.Verdict]
	if !ok {
		reason = "Isto está fora do que posso julgar só pelo pensamento."
	}
	return strings.NewReplacer(
		"{VEREDITO}", veredito[in.Verdict], "{OFENSA}", ofensa[in.Offense], "{RAZAO}", reason,
		"{CONFV}", strings.Replace(strconv.FormatFloat(in.Confidence, 'f', 2, 64), ".", ",", 1),
	).Replace(s)
}
