package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishMsg is jetstream's PublishMsg with WithMsgID(id) and
// WithExpectStream(stream), and the same answers and errors: it sets the
// two headers, asks with ctx (which has a deadline), asks again twice 250 ms
// apart while no stream answers (ErrNoStreamResponse after that), and
// returns the stream's PubAck, or its *jetstream.APIError wrapped as
// "nats: ...", or ErrInvalidJSAck.
//
// It exists for one reason: reading the PubAck. jetstream decodes every
// PubAck with encoding/json, 7 % of a worker's processor on cache hits
// (three publishes a thought). readPubAck reads the acks the server writes
// (a fixed template) without reflection, and hands anything else to
// encoding/json as jetstream would.
func publishMsg(ctx context.Context, nc *nats.Conn, m *nats.Msg, id, stream string) (*jetstream.PubAck, error) {
	if m.Header == nil {
		m.Header = nats.Header{}
	}
	m.Header[jetstream.MsgIDHeader] = []string{id}
	m.Header[jetstream.ExpectedStreamHeader] = []string{stream}
	resp, err := nc.RequestMsgWithContext(ctx, m)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		// A leader election or a restart: no stream answers for a moment.
		select {
		case <-ctx.Done():
		case <-time.After(jetstream.DefaultPubRetryWait):
		}
		resp, err = nc.RequestMsgWithContext(ctx, m)
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, jetstream.ErrNoStreamResponse
	}
	if err != nil {
		return nil, err
	}
	return readPubAck(resp.Data)
}

// readPubAck reads a stream's answer to a publish as jetstream does
// (encoding/json into its PubAck and APIError), with a fast path for the
// answers nats-server writes on success: {"stream":"S","seq":N}, with
// "domain" before "seq" in a domain, and ,"duplicate": true after it for a
// duplicate. Whatever the fast path does not know it leaves to
// encoding/json, so every input reads as jetstream would read it
// (FuzzReadPubAckAsJetStream).
func readPubAck(data []byte) (*jetstream.PubAck, error) {
	if ack, ok := fastPubAck(data); ok {
		return ack, nil
	}
	var resp struct { // jetstream's pubAckResponse
		Type  string              `json:"type"`
		Error *jetstream.APIError `json:"error,omitempty"`
		*jetstream.PubAck
	}
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("nats: %w", resp.Error)
	}
	if resp.PubAck == nil || resp.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

// fastPubAck reads data when it is a JSON object of the keys "stream",
// "domain" (strings without escapes), "seq" (digits) and "duplicate"
// (true or false), each at most once, spelled in lower case, with
// whitespace anywhere JSON allows it, and a stream that is not empty. It
// says false for anything else, valid or not.
func fastPubAck(data []byte) (*jetstream.PubAck, bool) {
	s := pubAckScanner{data: data}
	ack := &jetstream.PubAck{}
	var seen [4]bool // stream, seq, duplicate, domain
	if !s.byte('{') {
		return nil, false
	}
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return nil, false
		}
		var k int
		switch key {
		case "stream":
			ack.Stream, ok = s.str()
		case "seq":
			k = 1
			ack.Sequence, ok = s.uint()
		case "duplicate":
			k = 2
			ack.Duplicate, ok = s.bool()
		case "domain":
			k = 3
			ack.Domain, ok = s.str()
		default:
			return nil, false
		}
		if !ok || seen[k] {
			return nil, false
		}
		seen[k] = true
		if s.byte('}') {
			break
		}
		if !s.byte(',') {
			return nil, false
		}
	}
	s.space()
	if s.i != len(s.data) || ack.Stream == "" {
		return nil, false
	}
	return ack, true
}

// pubAckScanner reads the few JSON tokens fastPubAck knows.
type pubAckScanner struct {
	data []byte
	i    int
}

// space skips JSON's whitespace.
func (s *pubAckScanner) space() {
	for s.i < len(s.data) {
		switch s.data[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// byte skips whitespace and then c, and says whether c was there.
func (s *pubAckScanner) byte(c byte) bool {
	s.space()
	if s.i < len(s.data) && s.data[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes.
func (s *pubAckScanner) str() (string, bool) {
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for ; s.i < len(s.data); s.i++ {
		switch c := s.data[s.i]; {
		case c == '"':
			v := string(s.data[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
	}
	return "", false
}

// uint reads a JSON number that is a uint64: digits, no leading zero.
func (s *pubAckScanner) uint() (uint64, bool) {
	s.space()
	start := s.i
	var v uint64
	for ; s.i < len(s.data) && '0' <= s.data[s.i] && s.data[s.i] <= '9'; s.i++ {
		d := uint64(s.data[s.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false // past uint64: encoding/json refuses it
		}
		v = v*10 + d
	}
	n := s.i - start
	if n == 0 || n > 1 && s.data[start] == '0' {
		return 0, false
	}
	if s.i < len(s.data) {
		switch s.data[s.i] {
		case '.', 'e', 'E': // a fraction or an exponent: not ours to read
			return 0, false
		}
	}
	return v, true
}

// bool reads true or false.
func (s *pubAckScanner) bool() (bool, bool) {
	s.space()
	rest := s.data[s.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		s.i += 4
		return true, true
	case len(rest) >= 5 && string(rest[:5]) == "false":
		s.i += 5
		return false, true
	}
	return false, false
}
