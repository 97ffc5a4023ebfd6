package answer

import (
	"strings"
)

// table reads the markdown tables of an answer, in either direction: a row
// whose first cell is a label gives its value in the next cell
// ("| Veredito | REPROVADO |"); a header row of two labels or more
// ("| Verdict | Confidence |") gives the fields of the cells under it.
type table struct {
	header []fieldKind // by column; -1 where the column is not a field
}

// field is one labelled value read from a table.
type field struct {
	kind  fieldKind
	value string
}

// tableCells splits a markdown table row into its cells, each cleaned.
func tableCells(line string) ([]string, bool) {
	if !strings.HasPrefix(line, "|") || strings.Count(line, "|") < 2 {
		return nil, false
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimSpace(line[1:]), "|"), "|")
	cells := make([]string, len(parts))
	for i, p := range parts {
		cells[i] = clean(p)
	}
	return cells, true
}

// read reads one row of the table.
func (tb *table) read(cells []string) []field {
	if separatorRow(cells) {
		return nil
	}
	kinds, labelled := make([]fieldKind, len(cells)), 0
	for i, c := range cells {
		kinds[i] = -1
		if k, ok := fieldOf(c); ok {
			kinds[i] = k
			labelled++
		}
	}
	if labelled >= 2 {
		tb.header = kinds
		return nil
	}
	var out []field
	if tb.header != nil {
		for i, c := range cells {
			if i < len(tb.header) && tb.header[i] >= 0 && c != "" {
				out = append(out, field{tb.header[i], c})
			}
		}
		return out
	}
	if len(cells) >= 2 && kinds[0] >= 0 && cells[1] != "" {
		out = append(out, field{kinds[0], cells[1]})
	}
	return out
}

// separatorRow reports whether a row only draws the line under a header.
func separatorRow(cells []string) bool {
	for _, c := range cells {
		if strings.Trim(c, ":- ") != "" {
			return false
		}
	}
	return true
}
