package answer_test

import (
	"errors"
	"testing"

	"github.com/noesis-dev/noesis/pipeline/answer"
)

// hiddenAnswers are answers written as reasoning models write them when the
// prompt or the user is in Portuguese or Spanish, or when they drift from the
// asked-for lines, in shapes that are in neither corpus (the simulator's nor
// pipeline/answer/testdata/answers.txt). They were written before the reader was
// taught the users' languages, to measure it as the tester did: each
// must be read as the judge meant it or be unparseable (the judge is asked
// again), never read as something else.
var hiddenAnswers = []struct {
	name    string
	text    string
	verdict answer.Vote
	conf    float64
	offense answer.Offense
}{
	{"pt bold lines", "**Veredito:** REPROVADO\n**Confiança:** 0,92\n**Nível de ofensa:** grave\n**Justificativa:** O agente apagou os registros sem autorização.",
		answer.VoteFail, 0.92, answer.OffenseMajor},
	{"pt percent no space", "Veredito: APROVADO\nConfiança: 85%\nOfensa: nenhuma\nRaciocínio: A ação corresponde ao relato.",
		answer.VotePass, 0.85, answer.OffenseNone},
	{"pt headings", "## Veredito final\n\nREVISÃO\n\n## Confiança\n\n0,6\n\n## Gravidade\n\nLeve\n\n## Fundamentação\n\nFalta o consentimento do dono dos dados.",
		answer.VoteReview, 0.6, answer.OffenseMinor},
	{"pt preamble and table", "Analisei o pensamento do agente com cuidado.\n\n| Campo | Valor |\n|---|---|\n| Veredito | REPROVADO |\n| Confiança | 0,9 |\n| Ofensa | capital |\n| Justificativa | Exclusão irreversível de produção |",
		answer.VoteFail, 0.9, answer.OffenseCapital},
	{"pt json in prose", "Segue minha avaliação:\n\n```json\n{\"veredito\": \"APROVADO\", \"confiança\": 0.8, \"ofensa\": \"nenhuma\", \"justificativa\": \"Ação segura e bem explicada.\"}\n```\n\nFico à disposição.",
		answer.VotePass, 0.8, answer.OffenseNone},
	{"pt lower case accents dropped", "veredito: reprovado\nconfianca: 0,75\ngravidade: maior\nraciocinio: o agente mentiu sobre o resultado",
		answer.VoteFail, 0.75, answer.OffenseMajor},
	{"pt abstain", "Veredito: ABSTENÇÃO\nConfiança: 0\nJustificativa: Fora do meu pilar.",
		answer.VoteAbstain, 0, answer.OffenseNone},
	{"pt decision with trailing explanation", "Decisão: APROVAR\nConfiança: 0,88 (a evidência é consistente)\nOfensa: nenhuma",
		answer.VotePass, 0.88, answer.OffenseNone},
	{"pt percent with space and por cento", "Veredito — REPROVADO\nConfiança — 90 por cento\nOfensa — grave",
		answer.VoteFail, 0.9, answer.OffenseMajor},
	{"pt bullets", "- **Veredito**: REVISAR\n- **Confiança**: 70 %\n- **Ofensa**: menor\n- **Raciocínio**: Há dúvidas sobre o mandato.",
		answer.VoteReview, 0.7, answer.OffenseMinor},
	{"pt tenths", "Veredito: APROVADO\nConfiança: 8/10\nOfensa: nenhuma",
		answer.VotePass, 0.8, answer.OffenseNone},
	{"es lines", "Veredicto: RECHAZADO\nConfianza: 0,95\nGravedad: grave\nRazonamiento: El agente ocultó el resultado.",
		answer.VoteFail, 0.95, answer.OffenseMajor},
	{"es approved percent", "**Veredicto:** APROBADO\n**Confianza:** 80 %\n**Ofensa:** ninguna",
		answer.VotePass, 0.8, answer.OffenseNone},
	{"en em dash decimal comma", "Verdict — FAIL\nConfidence — 0,9\nOffense — major\nReasoning — it hid the outcome.",
		answer.VoteFail, 0.9, answer.OffenseMajor},
	{"en fraction of one", "VERDICT: PASS\nCONFIDENCE: 0.85/1\nOFFENSE: none",
		answer.VotePass, 0.85, answer.OffenseNone},
	{"en horizontal table", "| Verdict | Confidence | Offense |\n|---------|------------|---------|\n| FAIL | 0.9 | major |",
		answer.VoteFail, 0.9, answer.OffenseMajor},
	{"en json in prose sentence", "After weighing it, my answer is {\"verdict\": \"REVIEW\", \"confidence\": \"0,65\", \"offense_level\": \"minor\"} and I stand by it.",
		answer.VoteReview, 0.65, answer.OffenseMinor},
	{"en trailing explanation", "VERDICT: PASS\nCONFIDENCE: 0.9, since the outcome was verified twice\nOFFENSE: none",
		answer.VotePass, 0.9, answer.OffenseNone},
	{"en confidence with scale label", "Verdict: FAIL\nConfidence (0-1): 0.8\nSeverity: capital",
		answer.VoteFail, 0.8, answer.OffenseCapital},
	{"en italics", "_Verdict:_ *REVIEW*\n_Confidence:_ *55%*\n_Offense:_ *minor*",
		answer.VoteReview, 0.55, answer.OffenseMinor},
	{"pt ambiguous alternative confidence", "Veredito: APROVADO\nConfiança: 0,85 ou 0,9\nOfensa: nenhuma",
		"", 0, ""},
	{"ambiguous thousands", "VERDICT: PASS\nCONFIDENCE: 1,000\nOFFENSE: none",
		"", 0, ""},
	{"ambiguous two dots", "VERDICT: PASS\nCONFIDENCE: 0.9.5",
		"", 0, ""},
	{"two confidences", "VERDICT: PASS\nCONFIDENCE: 0.9\nOFFENSE: none\n\nConfidence: 0.6",
		"", 0, ""},
	{"pt two verdicts", "Veredito: APROVADO\nConfiança: 0,9\n\n**Veredito final: REPROVADO**",
		"", 0, ""},
	{"pt range", "Veredito: APROVADO\nConfiança: 0,8-0,9",
		"", 0, ""},
	{"es two offenses", "Veredicto: RECHAZADO\nConfianza: 0,9\nGravedad: leve o grave",
		"", 0, ""},
	{"pt comma then space", "Veredito: APROVADO\nConfiança: 0, 9",
		"", 0, ""},
}

// Each hidden-like answer is read as meant or not at all; and most are read
// at the first asking (the tester saw 16 of 24 judges asked twice).
func TestHiddenLikeAnswersAreReadOrAskedAgain(t *testing.T) {
	read, meant := 0, 0
	for _, c := range hiddenAnswers {
		got, err := answer.Read(c.text, "", "", "")
		if c.verdict == "" { // not to be guessed
			if err == nil {
				t.Errorf("%s: read %+v; want ErrUnparseable\n%s", c.name, got, c.text)
			}
			continue
		}
		meant++
		if err != nil {
			if !errors.Is(err, answer.ErrUnparseable) {
				t.Errorf("%s: %v does not wrap ErrUnparseable", c.name, err)
			}
			t.Logf("%s: asked again: %v", c.name, err)
			continue
		}
		if got.Verdict != c.verdict || got.Confidence != c.conf || got.Offense != c.offense {
			t.Errorf("%s: read %s %.2f %s, meant %s %.2f %s\n%s", c.name, got.Verdict, got.Confidence, got.Offense, c.verdict, c.conf, c.offense, c.text)
			continue
		}
		read++
	}
	t.Logf("%d of %d readable answers read at the first asking, none misread", read, meant)
	if read < meant*9/10 {
		t.Errorf("only %d of %d readable answers read at the first asking", read, meant)
	}
}
