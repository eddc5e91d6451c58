package safetensors

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// parser is a minimal JSON scanner for the safetensors header grammar:
//
//	{ "__metadata__": {string: string} | null,
//	  name: {"dtype": string, "shape": [uint...], "data_offsets": [uint, uint], ...}, ... }
//
// It allocates only the strings and slices it returns, rejects duplicate
// names, and skips unknown tensor fields with bounded nesting. A hand-written
// scanner (instead of encoding/json into maps) keeps peak memory close to the
// header size and gives errors that name the offending tensor.
// maxRank bounds the length of shape arrays (PyTorch allows 64 dimensions).
const maxRank = 64

type parser struct {
	b   []byte
	pos int
}

func (p *parser) fail(tensor, format string, args ...any) error {
	return &FormatError{Tensor: tensor, Reason: fmt.Sprintf(format, args...) + fmt.Sprintf(" (header byte %d)", p.pos), Err: ErrBadHeader}
}

func (p *parser) ws() {
	for p.pos < len(p.b) {
		switch p.b[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// expect consumes c after optional whitespace.
func (p *parser) expect(c byte, tensor string) error {
	p.ws()
	if p.pos >= len(p.b) {
		return p.fail(tensor, "unexpected end of header, want %q", c)
	}
	if p.b[p.pos] != c {
		return p.fail(tensor, "want %q, found %q", c, p.b[p.pos])
	}
	p.pos++
	return nil
}

// peek returns the next non-space byte, or 0 at the end.
func (p *parser) peek() byte {
	p.ws()
	if p.pos >= len(p.b) {
		return 0
	}
	return p.b[p.pos]
}

// more handles the separator of an object or array: it returns false after
// consuming the closing byte, true after a comma (or for the first element).
func (p *parser) more(first bool, closing byte, tensor string) (bool, error) {
	c := p.peek()
	if c == closing {
		p.pos++
		return false, nil
	}
	if first {
		return true, nil
	}
	if c != ',' {
		if c == 0 {
			return false, p.fail(tensor, "unexpected end of header, want ',' or %q", closing)
		}
		return false, p.fail(tensor, "want ',' or %q, found %q", closing, c)
	}
	p.pos++
	return true, nil
}

func (p *parser) header() (*Header, error) {
	h := &Header{}
	if err := p.expect('{', ""); err != nil {
		return nil, err
	}
	// Pre-size the tensor list: every entry needs a "data_offsets" key (an
	// escaped spelling only makes this an underestimate) and at least 48
	// bytes of JSON, so the estimate never exceeds the header's own size.
	if est := min(bytes.Count(p.b, []byte(`"data_offsets"`)), len(p.b)/48); est > 0 {
		h.Tensors = make([]TensorInfo, 0, est)
	}
	sawMeta := false
	for first := true; ; first = false {
		ok, err := p.more(first, '}', "")
		if err != nil {
			return nil, err
		}
		if !ok {
			break
		}
		name, err := p.str("")
		if err != nil {
			return nil, err
		}
		if err := p.expect(':', name); err != nil {
			return nil, err
		}
		if name == "__metadata__" {
			if sawMeta {
				return nil, errorf(ErrDuplicateTensor, name, "__metadata__ appears twice")
			}
			sawMeta = true
			if h.Metadata, err = p.metadata(); err != nil {
				return nil, err
			}
			continue
		}
		t, err := p.tensor(name)
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, t)
	}
	if p.peek() != 0 {
		return nil, p.fail("", "trailing data after the header object")
	}
	return h, nil
}

func (p *parser) metadata() (map[string]string, error) {
	const who = "__metadata__"
	if p.peek() == 'n' {
		return nil, p.literal("null", who)
	}
	if err := p.expect('{', who); err != nil {
		return nil, err
	}
	m := make(map[string]string)
	for first := true; ; first = false {
		ok, err := p.more(first, '}', who)
		if err != nil {
			return nil, err
		}
		if !ok {
			return m, nil
		}
		k, err := p.str(who)
		if err != nil {
			return nil, err
		}
		if err := p.expect(':', who); err != nil {
			return nil, err
		}
		if p.peek() != '"' {
			return nil, p.fail(who, "value of %q is not a string", k)
		}
		v, err := p.str(who)
		if err != nil {
			return nil, err
		}
		if _, dup := m[k]; dup {
			return nil, p.fail(who, "key %q appears twice", k)
		}
		m[k] = v
	}
}

func (p *parser) tensor(name string) (TensorInfo, error) {
	t := TensorInfo{Name: name}
	if err := p.expect('{', name); err != nil {
		return t, err
	}
	var haveDType, haveShape, haveOffsets bool
	var arr [maxRank]int64 // parse buffer, so only the final shape allocates
	for first := true; ; first = false {
		ok, err := p.more(first, '}', name)
		if err != nil {
			return t, err
		}
		if !ok {
			break
		}
		key, err := p.raw(name)
		if err != nil {
			return t, err
		}
		if err := p.expect(':', name); err != nil {
			return t, err
		}
		switch string(key) { // no allocation: the compiler compares in place
		case "dtype":
			if haveDType {
				return t, p.fail(name, "dtype given twice")
			}
			haveDType = true
			if p.peek() != '"' {
				return t, p.fail(name, "dtype is not a string")
			}
			s, err := p.raw(name)
			if err != nil {
				return t, err
			}
			d, known := intern(s)
			if !known {
				return t, errorf(ErrUnknownDType, name, "dtype %q", s)
			}
			t.DType = d
		case "shape":
			if haveShape {
				return t, p.fail(name, "shape given twice")
			}
			haveShape = true
			vals, err := p.uints(name, "shape", ErrShapeMismatch, &arr)
			if err != nil {
				return t, err
			}
			t.Shape = make([]int, len(vals))
			for i, v := range vals {
				if int64(int(v)) != v {
					return t, errorf(ErrShapeMismatch, name, "dimension %d does not fit in int", v)
				}
				t.Shape[i] = int(v)
			}
		case "data_offsets":
			if haveOffsets {
				return t, p.fail(name, "data_offsets given twice")
			}
			haveOffsets = true
			vals, err := p.uints(name, "data_offsets", ErrBadOffsets, &arr)
			if err != nil {
				return t, err
			}
			if len(vals) != 2 {
				return t, errorf(ErrBadOffsets, name, "data_offsets has %d entries, want 2", len(vals))
			}
			if vals[1] < vals[0] {
				return t, errorf(ErrBadOffsets, name, "data_offsets [%d, %d] end before they begin", vals[0], vals[1])
			}
			t.Begin, t.End = vals[0], vals[1]
		default:
			if err := p.skip(name, 0); err != nil {
				return t, err
			}
		}
	}
	switch {
	case !haveDType:
		return t, p.fail(name, "no dtype")
	case !haveShape:
		return t, p.fail(name, "no shape")
	case !haveOffsets:
		return t, p.fail(name, "no data_offsets")
	}
	return t, nil
}

// uints parses an array of non-negative integers. Negative or overflowing
// numbers are reported with sentinel bad (the caller's domain error).
func (p *parser) uints(name, field string, bad error, arr *[maxRank]int64) ([]int64, error) {
	if err := p.expect('[', name); err != nil {
		return nil, err
	}
	out := arr[:0]
	for first := true; ; first = false {
		ok, err := p.more(first, ']', name)
		if err != nil {
			return nil, err
		}
		if !ok {
			return out, nil
		}
		if len(out) >= maxRank {
			return nil, errorf(bad, name, "%s has more than %d entries", field, maxRank)
		}
		p.ws()
		neg := p.pos < len(p.b) && p.b[p.pos] == '-'
		if neg {
			p.pos++
		}
		start := p.pos
		var v int64
		overflow := false
		for p.pos < len(p.b) && p.b[p.pos] >= '0' && p.b[p.pos] <= '9' {
			d := int64(p.b[p.pos] - '0')
			if v > (math.MaxInt64-d)/10 {
				overflow = true
			} else {
				v = v*10 + d
			}
			p.pos++
		}
		digits := p.b[start:p.pos]
		if p.pos < len(p.b) && (p.b[p.pos] == '.' || p.b[p.pos] == 'e' || p.b[p.pos] == 'E') {
			return nil, errorf(bad, name, "%s holds a non-integer number", field)
		}
		switch {
		case len(digits) == 0:
			return nil, p.fail(name, "%s: want a number", field)
		case len(digits) > 1 && digits[0] == '0':
			return nil, p.fail(name, "%s: number %s has a leading zero", field, digits)
		case neg && v != 0:
			return nil, errorf(bad, name, "%s holds negative number -%s", field, digits)
		case overflow:
			return nil, errorf(bad, name, "%s: number %s out of range", field, digits)
		}
		out = append(out, v)
	}
}

// str parses a JSON string.
func (p *parser) str(tensor string) (string, error) {
	b, err := p.raw(tensor)
	return string(b), err
}

// raw parses a JSON string and returns its decoded bytes without
// allocating when it has no escapes (the slice aliases the header).
func (p *parser) raw(tensor string) ([]byte, error) {
	if err := p.expect('"', tensor); err != nil {
		return nil, err
	}
	start := p.pos
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			s := p.b[start:p.pos]
			p.pos++
			return s, nil
		case c == '\\':
			return p.strSlow(start, tensor)
		case c < 0x20:
			return nil, p.fail(tensor, "control character in string")
		}
		p.pos++
	}
	return nil, p.fail(tensor, "unterminated string")
}

func (p *parser) strSlow(start int, tensor string) ([]byte, error) {
	out := append([]byte(nil), p.b[start:p.pos]...)
	for p.pos < len(p.b) {
		c := p.b[p.pos]
		switch {
		case c == '"':
			p.pos++
			return out, nil
		case c < 0x20:
			return nil, p.fail(tensor, "control character in string")
		case c != '\\':
			out = append(out, c)
			p.pos++
			continue
		}
		if p.pos+1 >= len(p.b) {
			break
		}
		e := p.b[p.pos+1]
		p.pos += 2
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return nil, p.fail(tensor, "bad \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A high surrogate must be followed by \uDC00-\uDFFF.
				r2 := rune(-1)
				if p.pos+1 < len(p.b) && p.b[p.pos] == '\\' && p.b[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok = p.hex4(); !ok {
						return nil, p.fail(tensor, "bad \\u escape")
					}
				}
				if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
					return nil, p.fail(tensor, "unpaired surrogate in string")
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, p.fail(tensor, "bad escape \\%c", e)
		}
	}
	return nil, p.fail(tensor, "unterminated string")
}

func (p *parser) hex4() (rune, bool) {
	if p.pos+4 > len(p.b) {
		return 0, false
	}
	var r rune
	for _, c := range p.b[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

func (p *parser) literal(word, tensor string) error {
	p.ws()
	if len(p.b)-p.pos < len(word) || string(p.b[p.pos:p.pos+len(word)]) != word {
		return p.fail(tensor, "invalid value")
	}
	p.pos += len(word)
	return nil
}

// skip consumes any JSON value, refusing nesting deeper than maxDepth.
func (p *parser) skip(tensor string, depth int) error {
	if depth > maxDepth {
		return p.fail(tensor, "JSON nested deeper than %d levels", maxDepth)
	}
	switch c := p.peek(); {
	case c == '"':
		_, err := p.raw(tensor)
		return err
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		p.pos++
		for first := true; ; first = false {
			ok, err := p.more(first, closing, tensor)
			if err != nil || !ok {
				return err
			}
			if c == '{' {
				if _, err := p.raw(tensor); err != nil {
					return err
				}
				if err := p.expect(':', tensor); err != nil {
					return err
				}
			}
			if err := p.skip(tensor, depth+1); err != nil {
				return err
			}
		}
	case c == 't':
		return p.literal("true", tensor)
	case c == 'f':
		return p.literal("false", tensor)
	case c == 'n':
		return p.literal("null", tensor)
	case c == '-' || c >= '0' && c <= '9':
		start := p.pos
		for p.pos < len(p.b) && (p.b[p.pos] == '-' || p.b[p.pos] == '+' || p.b[p.pos] == '.' ||
			p.b[p.pos] == 'e' || p.b[p.pos] == 'E' || p.b[p.pos] >= '0' && p.b[p.pos] <= '9') {
			p.pos++
		}
		if _, err := strconv.ParseFloat(string(p.b[start:p.pos]), 64); err != nil {
			return p.fail(tensor, "invalid number")
		}
		return nil
	default:
		return p.fail(tensor, "invalid value")
	}
}
