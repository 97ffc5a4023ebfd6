package answer

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// The words a judge's answer is read by, in the languages noesis reads:
// English, Portuguese (the seed's users write it, and DeepSeek-R1 answers in
// the prompt's language) and Spanish, which costs a few more words. Every
// word is kept upper-case (labels lower-case) and without accents: an answer
// is folded the same way before it is looked up (fold), so "REVISÃO" and
// "REVISAO", "Confiança" and "confianca" read alike. docs/judges.md lists them.

// verdictWords names each vote's words.
var verdictWords = wordSet(map[Vote][]string{
	VotePass: {"PASS", "PASSED", "PASSES", "APPROVE", "APPROVED",
		"APROVADO", "APROVADA", "APROVAR", "APROVO", "APROVA", "PASSA", "PASSOU",
		"APROBADO", "APROBADA", "APROBAR", "APRUEBO", "APRUEBA", "PASA"},
	VoteFail: {"FAIL", "FAILED", "FAILS", "REJECT", "REJECTED",
		"REPROVADO", "REPROVADA", "REPROVAR", "REPROVO", "REPROVA", "REJEITADO", "REJEITADA", "REJEITAR", "REJEITO", "FALHA", "FALHOU",
		"REPROBADO", "REPROBADA", "REPROBAR", "RECHAZADO", "RECHAZADA", "RECHAZAR", "RECHAZO"},
	VoteReview: {"REVIEW", "REVISAO", "REVISAR", "REVISION"},
	VoteAbstain: {"ABSTAIN", "ABSTAINS", "ABSTAINED", "ABSTENTION",
		"ABSTENCAO", "ABSTER", "ABSTENHO", "ABSTEM", "ABSTENCION", "ABSTENGO", "ABSTENERSE", "ABSTENERME"},
})

// offenseWords names each offense level's words. "GRAVE" is major: it is the
// Portuguese and Spanish "serious", and no word is read as capital but
// capital itself.
var offenseWords = wordSet(map[Offense][]string{
	OffenseNone:    {"NONE", "NIL", "NENHUMA", "NENHUM", "NINGUNA", "NINGUNO", "NULA", "NULO"},
	OffenseMinor:   {"MINOR", "LEVE", "MENOR"},
	OffenseMajor:   {"MAJOR", "GRAVE", "MAIOR", "MAYOR"},
	OffenseCapital: {"CAPITAL"},
})

// negations deny the verdict or offense word that follows them.
var negations = set("NOT", "NO", "NEVER", "CANNOT", "NAO", "NUNCA", "JAMAIS", "JAMAS", "NEM", "NI", "SEM", "SIN", "NADA")

// alternatives join two choices ("PASS or REVIEW", "leve ou grave").
var alternatives = set("OR", "OU", "O", "VS", "VERSUS")

// labels maps a field's labels (folded, lower-case) to the field.
var labels = func() map[string]fieldKind {
	m := map[string]fieldKind{}
	for kind, names := range map[fieldKind][]string{
		fieldVerdict: {"verdict", "decision", "ruling", "judgment", "judgement", "vote", "answer", "verdict and confidence",
			"veredito", "veredicto", "decisao", "julgamento", "juicio", "voto"},
		fieldConfidence: {"confidence", "confidence level", "confidence score", "certainty", "conf",
			"confianca", "nivel de confianca", "grau de confianca", "confianza", "nivel de confianza", "grado de confianza", "certeza"},
		fieldOffense: {"offense", "offence", "offense level", "offence level", "severity", "offense severity", "offence severity",
			"ofensa", "nivel de ofensa", "gravidade", "nivel de gravidade", "severidade", "gravedad", "nivel de gravedad", "severidad"},
		fieldReasoning: {"reasoning", "reason", "rationale", "justification", "explanation",
			"raciocinio", "justificativa", "justificacao", "fundamentacao", "razao", "motivo", "explicacao",
			"razonamiento", "justificacion", "fundamentacion", "fundamento", "explicacion"},
	} {
		for _, n := range names {
			m[n] = kind
		}
	}
	return m
}()

// labelPrefixes and labelSuffixes are dropped from a label ("Final verdict",
// "Veredito final", "Mi veredicto").
var (
	labelPrefixes = []string{"final ", "my ", "overall ", "the ", "judge ", "your ", "o ", "a ", "meu ", "minha ", "mi ", "el ", "la ", "su "}
	labelSuffixes = []string{" final", " do juiz", " del juez"}
)

// fieldOf names the field a label stands for.
func fieldOf(label string) (fieldKind, bool) {
	l := strings.ToLower(fold(strings.TrimSpace(label)))
	if i := strings.IndexByte(l, '('); i > 0 {
		l = strings.TrimSpace(l[:i])
	}
	l = labelSeparators.Replace(l)
	l = strings.Join(strings.Fields(l), " ")
	for _, p := range labelPrefixes {
		l = strings.TrimPrefix(l, p)
	}
	for _, s := range labelSuffixes {
		l = strings.TrimSuffix(l, s)
	}
	kind, ok := labels[l]
	return kind, ok
}

var labelSeparators = strings.NewReplacer("_", " ", "-", " ")

// fold upper-cases s and takes the accents off its letters. ASCII, the usual
// case, is only upper-cased.
func fold(s string) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return strings.ToUpper(s)
	}
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	plain, _, err := transform.String(t, s)
	if err != nil {
		plain = s
	}
	return strings.ToUpper(plain)
}

// word is one word of a folded text and where it stands in it.
type word struct {
	text       string
	start, end int
}

// wordsIn splits folded text into its words: runs of letters, with an
// apostrophe inside a word kept ("DOESN'T").
func wordsIn(s string) []word {
	var out []word
	start := -1
	for i, r := range s {
		letter := unicode.IsLetter(r) || (start >= 0 && (r == '\'' || r == '’'))
		switch {
		case letter && start < 0:
			start = i
		case !letter && start >= 0:
			out = append(out, word{s[start:i], start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, word{s[start:], start, len(s)})
	}
	return out
}

// negates reports whether a folded word denies what follows it.
func negates(w string) bool {
	return negations[w] || strings.HasSuffix(w, "N'T") || strings.HasSuffix(w, "N’T")
}

func set(ws ...string) map[string]bool {
	m := make(map[string]bool, len(ws))
	for _, w := range ws {
		m[w] = true
	}
	return m
}

func wordSet[K ~string](by map[K][]string) map[string]K {
	m := map[string]K{}
	for k, ws := range by {
		for _, w := range ws {
			m[w] = k
		}
	}
	return m
}
