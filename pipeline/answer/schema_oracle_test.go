package answer

// The oracle the differential tests hold the reader to
// (schema_diff_test.go): ReadSchema as it was before scanSchema, which read
// every answer token by token with what is now decodeTokens (unchanged; its
// own tests and the corpus hold its behaviour). The fast path must accept
// the same answers, read them the same and leave the others to
// decodeTokens, whose errors are the reader's.

// ReadSchemaBefore is the oracle, for the external tests.
var ReadSchemaBefore = readSchemaBefore

// readSchemaBefore is ReadSchema as it was: every object token by token.
func readSchemaBefore(answer string, quote Quote) (JudgeAnswer, error) {
	return readSchemaWith(decodeTokens, answer, quote)
}
