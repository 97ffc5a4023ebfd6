package config

import (
	"fmt"
	"math"

	"github.com/dustin/go-humanize"
)

// ByteSize is a setting read as a size: a number of bytes (1048576) or a
// number with a unit (512MiB, 1GiB, 1GB).
type ByteSize int64

// UnmarshalText reads a size; it fails on anything that is not one, or is
// over 2^63-1 bytes.
func (b *ByteSize) UnmarshalText(text []byte) error {
	n, err := humanize.ParseBytes(string(text))
	if err != nil {
		return err
	}
	if n > math.MaxInt64 {
		return fmt.Errorf("%s is too large", text)
	}
	*b = ByteSize(n)
	return nil
}

// String writes the size in binary units (1.0 GiB).
func (b ByteSize) String() string { return humanize.IBytes(uint64(max(b, 0))) }
