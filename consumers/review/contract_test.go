package review_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/noesis-dev/noesis/consumers/review"
	"github.com/noesis-dev/noesis/docs/contract"
)

// The review and the decision are described by their schemas, field for
// field: every field a property, every property a field, and a field is
// required exactly when it is never omitted.
func TestReviewSchemasMatchStructs(t *testing.T) {
	for _, c := range []struct {
		schema string
		typ    reflect.Type
	}{
		{contract.Review, reflect.TypeFor[review.Review]()},
		{contract.ReviewDecision, reflect.TypeFor[review.Ruling]()},
	} {
		diffs, err := contract.Mismatches(c.schema, c.typ)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range diffs {
			t.Error(d)
		}
	}
}

// A decision as Desk stores it validates, and the schema is no rubber
// stamp: a third decision, a missing note, a time that is not RFC 3339 are
// refused.
func TestReviewDecisionValidates(t *testing.T) {
	schemas, err := contract.Schemas()
	if err != nil {
		t.Fatal(err)
	}
	d := review.Ruling{ReviewID: "0123456789abcdef", EventID: "evt-42", AgentID: "daimon-1", Decision: review.Fail, Note: "it deletes the only copy",
		Reviewer: "reviewer", DecidedAt: time.Date(2026, 11, 29, 10, 5, 0, 123e6, time.UTC), VerdictDecision: "review"}
	b, _ := json.Marshal(d)
	if err := contract.Validate(schemas, contract.ReviewDecision, b); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		strings.Replace(string(b), `"fail"`, `"review"`, 1),
		strings.Replace(string(b), `"note":"it deletes the only copy",`, "", 1),
		strings.Replace(string(b), `2026-11-29T10:05:00.123Z`, "yesterday", 1),
	} {
		if contract.Validate(schemas, contract.ReviewDecision, []byte(bad)) == nil {
			t.Errorf("accepted: %s", bad)
		}
	}
}
