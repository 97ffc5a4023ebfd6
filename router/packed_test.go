package router

import (
	"crypto/rand"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"github.com/noesis-dev/noesis/pipeline"
)

// prose is English written by people (this repository's judges' guide),
// standing in for a model's answer and thinking.
func prose(t testing.TB, n int) string {
	t.Helper()
	b, err := os.ReadFile("../docs/judges.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < n {
		t.Fatalf("docs/judges.md has %d bytes, want %d", len(b), n)
	}
	return string(b[:n])
}

func TestPackedAnswerUnpacksAsItWas(t *testing.T) {
	noise := make([]byte, 3000)
	if _, err := rand.Read(noise); err != nil {
		t.Fatal(err)
	}
	cases := map[string]pipeline.Response{
		"empty":      {},
		"short":      {Content: "VERDICT: PASS", Provider: "nebius", Model: "deepseek-ai/DeepSeek-R1-0528-fast", Target: "nebius/r1"},
		"prose":      {Content: prose(t, 400), Reasoning: prose(t, 4000)[400:], Provider: "sim", Model: "m", Usage: pipeline.Usage{PromptTokens: 812, CompletionTokens: 1900, TotalTokens: 2712}},
		"only think": {Reasoning: prose(t, 2000), Truncated: true},
		"noise":      {Content: string(noise[:1000]), Reasoning: string(noise[1000:])},
		"flags":      {Content: "x", Fallback: true, ColdStart: true, Hedged: true, Truncated: true, Structured: true},
		"unicode":    {Content: "DIKĒ: justiça — «aprovado» ✓", Reasoning: "pensando… " + prose(t, 300)},
		"not kept":   {Content: "hit", Cached: true, Latency: time.Second, CostUSD: 0.5},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) {
			p := pack(r)
			got, ok := p.unpack()
			if !ok {
				t.Fatalf("unpack(pack(r)) not ok")
			}
			want := r
			want.Cached, want.Latency, want.CostUSD = false, 0, 0 // a hit's own (asHit)
			if got != want {
				t.Errorf("unpack(pack(r)) = %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestUnpackNeverPanicsOnBytesPackDidNotMake(t *testing.T) {
	whole := pack(pipeline.Response{Content: prose(t, 300), Reasoning: prose(t, 900)[300:], Provider: "p", Model: "m", Target: "t"})
	for i := range len(whole) {
		_, _ = whole[:i].unpack() // a cut answer may read as a shorter one; it must not panic
	}
	garbage := make([]byte, 64)
	for range 2000 {
		if _, err := rand.Read(garbage); err != nil {
			t.Fatal(err)
		}
		_, _ = packed(garbage).unpack()
	}
	if _, ok := packed(nil).unpack(); ok {
		t.Error("an empty entry unpacked")
	}
	if _, ok := (packed{0, 1, 2, 3, 200}).unpack(); ok {
		t.Error("a provider longer than the entry unpacked")
	}
}

// TestPackedOverheadIsWhatTheStoreSpends fills a cache's store and checks
// that packedOverhead, what each entry is counted for besides its bytes,
// is what the store really holds per entry, give or take a third: the
// cache's MaxBytes then bounds the memory its answers take.
func TestPackedOverheadIsWhatTheStoreSpends(t *testing.T) {
	const n = 20000
	c, err := NewCache(CacheConfig{MaxBytes: 1 << 30, TTL: DefaultCacheTTL()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := make([]string, n)
	for i := range n {
		keys[i] = CacheKey("p", "m", pipeline.Request{Messages: []pipeline.Message{{Role: "user", Content: fmt.Sprint(i)}}})
	}
	start := heapInUse()
	entries := make([]packed, n)
	for i := range n {
		entries[i] = pack(pipeline.Response{Content: fmt.Sprintf("VERDICT: PASS %d", i), Provider: "p", Model: "m"})
	}
	made := heapInUse() - start - int64(cap(entries))*int64(unsafe.Sizeof(entries[0])) // the entries' own bytes, as allocated
	var counted int64
	for _, p := range entries {
		counted += p.cost() - packedOverhead
	}
	if d := made - counted; d > made/100 || d < -made/100 { // within the heap's own stirring
		t.Errorf("cost counts the entries as %d bytes, their allocations take %d", counted, made)
	}
	for i := range n {
		for !c.store.SetWithTTL(keys[i], entries[i], entries[i].cost(), time.Hour) {
			c.store.Wait() // its buffer was full: the write was dropped
		}
	}
	c.store.Wait()
	var charged int64
	for _, p := range entries {
		charged += p.cost()
	}
	if used := c.store.MaxCost() - c.store.RemainingCost(); used != charged {
		t.Errorf("the store counts %d bytes for entries that cost %d: it adds a charge of its own", used, charged)
	}
	entries = nil // the store holds them now
	per := (heapInUse() - start - made) / n
	held := 0
	for _, k := range keys {
		if _, ok := c.store.Get(k); ok {
			held++
		}
	}
	if held < n*9/10 {
		t.Fatalf("the store holds %d of %d entries", held, n)
	}
	t.Logf("the store spends %d bytes an entry besides its bytes; packedOverhead is %d", per, packedOverhead)
	if per > packedOverhead*4/3 || per < packedOverhead*2/3 {
		t.Errorf("the store spends %d bytes an entry besides its bytes; packedOverhead says %d", per, packedOverhead)
	}
	runtime.KeepAlive(keys)
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}

// A name a hit carries (provider, model, target) keeps no answer alive: a
// metric's label kept for the process's life would keep the whole entry.
func TestUnpackedNamesAreNotViewsOfTheEntry(t *testing.T) {
	p := pack(pipeline.Response{Content: "VERDICT: PASS", Reasoning: prose(t, 2000), Provider: "nebius", Model: "deepseek-ai/DeepSeek-R1-0528-fast", Target: "nebius/r1"})
	r, ok := p.unpack()
	if !ok {
		t.Fatal("unpack(pack(r)) not ok")
	}
	lo, hi := uintptr(unsafe.Pointer(&p[0])), uintptr(unsafe.Pointer(&p[0]))+uintptr(len(p))
	for _, s := range []string{r.Provider, r.Model, r.Target} {
		if at := uintptr(unsafe.Pointer(unsafe.StringData(s))); at >= lo && at < hi {
			t.Errorf("%q is a view of the packed entry", s)
		}
	}
	if again, _ := p.unpack(); unsafe.StringData(again.Model) != unsafe.StringData(r.Model) {
		t.Error("each hit made its own copy of the model's name")
	}
}
