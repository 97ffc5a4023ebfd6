package review_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/noesis-dev/noesis/consumers/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m, natstest.LeakOptions()...) }
