// Package tokenizer is CLIP's text tokenizer: it reads a Hugging Face
// tokenizer.json (CLIPTokenizerFast's file) and turns a string into the 77
// token ids the text tower takes, exactly as Hugging Face's Rust tokenizers
// do with truncation and padding to 77.
//
// Only the pipeline CLIP's tokenizer.json uses is supported (normalizer NFC,
// \s+ -> " ", Lowercase; the added special tokens; pre-tokenizer Split with
// CLIP's pattern + ByteLevel without its own regex; BPE with an
// end-of-word suffix; RobertaProcessing or an equivalent template); anything
// else is rejected with ErrInvalid rather than tokenised differently.
package tokenizer

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// ContextLength is CLIP's sequence length: every Encode result has this
// many ids unless the tokenizer was parsed with another length.
const ContextLength = 77

// ErrInvalid is wrapped by every error Parse returns (a malformed or
// unsupported tokenizer.json). Callers report it as InvalidModel.
var ErrInvalid = errors.New("tokenizer: invalid tokenizer.json")

// clipPattern is the Split pattern of CLIP's tokenizer.json, the one split
// this package implements (by hand: Go's regexp has no Unicode \s, and a
// hand-written scanner is linear and allocation-free).
const clipPattern = `<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+`

// Tokenizer is a parsed tokenizer.json. It is safe for concurrent use.
type Tokenizer struct {
	vocab      map[string]int32
	merges     mergeTable
	suffix     string // end_of_word_suffix, "</w>"
	unk        int32  // -1: none
	added      []addedToken
	bos, eos   int32
	pad        int32
	length     int
	lowercase  bool
	nfc        bool
	collapseWS bool
	chunked    bool        // no added token holds whitespace: see tokens
	byteSym    [256]string // GPT-2 bytes_to_unicode, one string per byte
	// byteID[b] and byteEndID[b]: the ids of byte b's symbol without and
	// with the end-of-word suffix (the unk id, or -1, when missing).
	byteID, byteEndID [256]int32
}

type merge struct{ rank, id int32 }

type addedToken struct {
	content string
	id      int32
}

// BOS returns the start-of-text id.
func (t *Tokenizer) BOS() int32 { return t.bos }

// EOS returns the end-of-text id (the row the text tower pools at).
func (t *Tokenizer) EOS() int32 { return t.eos }

// Pad returns the padding id.
func (t *Tokenizer) Pad() int32 { return t.pad }

// Length returns the number of ids Encode returns (77 for CLIP).
func (t *Tokenizer) Length() int { return t.length }

// VocabSize returns one more than the largest id the tokenizer can produce.
func (t *Tokenizer) VocabSize() int {
	n := int32(0)
	for _, id := range t.vocab {
		n = max(n, id+1)
	}
	for _, a := range t.added {
		n = max(n, a.id+1)
	}
	return int(n)
}

// The parts of tokenizer.json this package reads.
type fileJSON struct {
	AddedTokens []struct {
		ID         *int32 `json:"id"`
		Content    string `json:"content"`
		SingleWord bool   `json:"single_word"`
		LStrip     bool   `json:"lstrip"`
		RStrip     bool   `json:"rstrip"`
		Normalized bool   `json:"normalized"`
		Special    bool   `json:"special"`
	} `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Padding       *struct {
		PadID *int32 `json:"pad_id"`
	} `json:"padding"`
	Model *struct {
		Type                    string            `json:"type"`
		Vocab                   map[string]int32  `json:"vocab"`
		Merges                  []json.RawMessage `json:"merges"`
		UnkToken                *string           `json:"unk_token"`
		EndOfWordSuffix         *string           `json:"end_of_word_suffix"`
		ContinuingSubwordPrefix *string           `json:"continuing_subword_prefix"`
		Dropout                 *float64          `json:"dropout"`
		ByteFallback            bool              `json:"byte_fallback"`
	} `json:"model"`
}

type component struct {
	Type string `json:"type"`
	// Sequence
	Normalizers   []json.RawMessage `json:"normalizers"`
	Pretokenizers []json.RawMessage `json:"pretokenizers"`
	// Replace, Split
	Pattern *struct {
		Regex  *string `json:"Regex"`
		String *string `json:"String"`
	} `json:"pattern"`
	Content  *string `json:"content"`
	Behavior string  `json:"behavior"`
	Invert   bool    `json:"invert"`
	// ByteLevel
	AddPrefixSpace bool  `json:"add_prefix_space"`
	UseRegex       *bool `json:"use_regex"`
	// RobertaProcessing
	Sep []json.RawMessage `json:"sep"`
	Cls []json.RawMessage `json:"cls"`
	// TemplateProcessing
	Single        []json.RawMessage `json:"single"`
	SpecialTokens map[string]struct {
		IDs []int32 `json:"ids"`
	} `json:"special_tokens"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse reads a tokenizer.json. Errors wrap ErrInvalid.
func Parse(data []byte) (*Tokenizer, error) {
	var f fileJSON
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	t := &Tokenizer{length: ContextLength, unk: -1}
	for i := range 256 {
		t.byteSym[i] = string(byteToRune[i])
	}
	if err := t.parseModel(&f); err != nil {
		return nil, err
	}
	for _, a := range f.AddedTokens {
		if a.ID == nil || *a.ID < 0 || a.Content == "" {
			return nil, invalid("added token %q without a valid id", a.Content)
		}
		if a.SingleWord || a.LStrip || a.RStrip {
			return nil, invalid("added token %q: single_word/lstrip/rstrip are not supported", a.Content)
		}
		t.added = append(t.added, addedToken{a.Content, *a.ID})
	}
	if err := t.parseNormalizer(f.Normalizer); err != nil {
		return nil, err
	}
	// Added tokens marked normalized are matched in the normalised text:
	// match their normalised form (CLIP's are unchanged by it).
	for i, a := range f.AddedTokens {
		if a.Normalized {
			t.added[i].content = t.normalize(a.Content)
		}
	}
	t.chunked = true
	for _, a := range t.added {
		if strings.IndexFunc(a.content, unicode.IsSpace) >= 0 {
			t.chunked = false
		}
	}
	if err := t.parsePreTokenizer(f.PreTokenizer); err != nil {
		return nil, err
	}
	if err := t.parsePostProcessor(f.PostProcessor); err != nil {
		return nil, err
	}
	// tokenizer_config.json's pad token for CLIP is <|endoftext|>; a
	// tokenizer.json saved with padding on names it, else the EOS pads.
	t.pad = t.eos
	if f.Padding != nil && f.Padding.PadID != nil {
		t.pad = *f.Padding.PadID
	}
	return t, nil
}

func (t *Tokenizer) parseModel(f *fileJSON) error {
	m := f.Model
	if m == nil {
		return invalid("no model")
	}
	if m.Type != "BPE" && m.Type != "" {
		return invalid("model type %q (only BPE)", m.Type)
	}
	if len(m.Vocab) == 0 {
		return invalid("BPE model without a vocabulary")
	}
	if m.Dropout != nil && *m.Dropout != 0 {
		return invalid("BPE dropout %v is not supported", *m.Dropout)
	}
	if m.ContinuingSubwordPrefix != nil && *m.ContinuingSubwordPrefix != "" {
		return invalid("continuing_subword_prefix %q is not supported", *m.ContinuingSubwordPrefix)
	}
	if m.ByteFallback {
		return invalid("byte_fallback is not supported")
	}
	if m.EndOfWordSuffix != nil {
		t.suffix = *m.EndOfWordSuffix
	}
	for s, id := range m.Vocab {
		if id < 0 {
			return invalid("vocabulary entry %q has negative id %d", s, id)
		}
	}
	t.vocab = m.Vocab
	if m.UnkToken != nil {
		id, ok := t.vocab[*m.UnkToken]
		if !ok {
			return invalid("unk_token %q is not in the vocabulary", *m.UnkToken)
		}
		t.unk = id
	}
	t.merges = newMergeTable(len(m.Merges))
	for rank, raw := range m.Merges {
		var a, b string
		var s string
		var pair []string
		switch {
		case json.Unmarshal(raw, &s) == nil:
			var ok bool
			a, b, ok = strings.Cut(s, " ")
			if !ok || a == "" || b == "" || strings.Contains(b, " ") {
				return invalid("merge %d %q is not two space-separated symbols", rank, s)
			}
		case json.Unmarshal(raw, &pair) == nil && len(pair) == 2:
			a, b = pair[0], pair[1]
		default:
			return invalid("merge %d is neither \"a b\" nor [a, b]: %.40s", rank, raw)
		}
		ia, oka := t.vocab[a]
		ib, okb := t.vocab[b]
		ic, okc := t.vocab[a+b]
		if !oka || !okb || !okc {
			return invalid("merge %d (%q %q) uses symbols missing from the vocabulary", rank, a, b)
		}
		if _, dup := t.merges.get(ia, ib); !dup {
			t.merges.put(ia, ib, merge{int32(rank), ic})
		}
	}
	for b := range 256 {
		t.byteID[b] = t.lookupSymbol(byte(b), false)
		t.byteEndID[b] = t.lookupSymbol(byte(b), true)
	}
	return nil
}

func (t *Tokenizer) parseNormalizer(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%w: normalizer: %v", ErrInvalid, err)
	}
	switch c.Type {
	case "Sequence":
		// The order matters only between NFC, whitespace and lowercase
		// in ways CLIP's order (NFC, Replace, Lowercase) fixes; require it.
		step := 0
		for _, r := range c.Normalizers {
			var s component
			if err := json.Unmarshal(r, &s); err != nil {
				return fmt.Errorf("%w: normalizer: %v", ErrInvalid, err)
			}
			var at int
			switch {
			case s.Type == "NFC":
				at, t.nfc = 1, true
			case s.Type == "Replace" && s.Pattern != nil && s.Pattern.Regex != nil && *s.Pattern.Regex == `\s+` && s.Content != nil && *s.Content == " ":
				at, t.collapseWS = 2, true
			case s.Type == "Lowercase":
				at, t.lowercase = 3, true
			default:
				return invalid("normalizer %s is not supported (CLIP's: NFC, Replace \\s+ -> \" \", Lowercase)", r)
			}
			if at <= step {
				return invalid("normalizers out of CLIP's order (NFC, Replace, Lowercase)")
			}
			step = at
		}
	case "NFC":
		t.nfc = true
	case "Lowercase":
		t.lowercase = true
	default:
		return invalid("normalizer type %q is not supported", c.Type)
	}
	return nil
}

func (t *Tokenizer) parsePreTokenizer(raw json.RawMessage) error {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil || c.Type != "Sequence" || len(c.Pretokenizers) != 2 {
		return invalid("pre_tokenizer must be CLIP's Sequence [Split, ByteLevel]")
	}
	var split, bl component
	if json.Unmarshal(c.Pretokenizers[0], &split) != nil || json.Unmarshal(c.Pretokenizers[1], &bl) != nil {
		return invalid("pre_tokenizer must be CLIP's Sequence [Split, ByteLevel]")
	}
	if split.Type != "Split" || split.Pattern == nil || split.Pattern.Regex == nil ||
		*split.Pattern.Regex != clipPattern || split.Behavior != "Removed" || !split.Invert {
		return invalid("pre_tokenizer Split is not CLIP's (pattern %s, behavior Removed, invert)", clipPattern)
	}
	if bl.Type != "ByteLevel" || bl.AddPrefixSpace || bl.UseRegex == nil || *bl.UseRegex {
		return invalid("pre_tokenizer ByteLevel must have add_prefix_space false and use_regex false")
	}
	return nil
}

// specialID reads ["<|endoftext|>", 49407] from RobertaProcessing.
func specialID(raw []json.RawMessage) (int32, bool) {
	if len(raw) != 2 {
		return 0, false
	}
	var id int32
	if json.Unmarshal(raw[1], &id) != nil || id < 0 {
		return 0, false
	}
	return id, true
}

func (t *Tokenizer) parsePostProcessor(raw json.RawMessage) error {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return fmt.Errorf("%w: post_processor: %v", ErrInvalid, err)
	}
	switch c.Type {
	case "RobertaProcessing":
		bos, ok1 := specialID(c.Cls)
		eos, ok2 := specialID(c.Sep)
		if !ok1 || !ok2 {
			return invalid("RobertaProcessing without cls/sep ids")
		}
		t.bos, t.eos = bos, eos
	case "TemplateProcessing":
		// Only a template that is [BOS, $A, EOS].
		type piece struct {
			SpecialToken *struct {
				ID string `json:"id"`
			} `json:"SpecialToken"`
			Sequence *struct {
				ID string `json:"id"`
			} `json:"Sequence"`
		}
		var items []piece
		for _, r := range c.Single {
			var it piece
			if json.Unmarshal(r, &it) != nil {
				return invalid("TemplateProcessing item %s", r)
			}
			items = append(items, it)
		}
		if len(items) != 3 || items[0].SpecialToken == nil || items[1].Sequence == nil || items[2].SpecialToken == nil {
			return invalid("TemplateProcessing single template is not [BOS, $A, EOS]")
		}
		bos, ok1 := c.SpecialTokens[items[0].SpecialToken.ID]
		eos, ok2 := c.SpecialTokens[items[2].SpecialToken.ID]
		if !ok1 || !ok2 || len(bos.IDs) != 1 || len(eos.IDs) != 1 {
			return invalid("TemplateProcessing special tokens without single ids")
		}
		t.bos, t.eos = bos.IDs[0], eos.IDs[0]
	default:
		return invalid("post_processor type %q is not supported (CLIP's is RobertaProcessing)", c.Type)
	}
	return nil
}

// normalize applies the normalizer: NFC, every run of Unicode whitespace to
// one space, lowercase per character (Rust's char::to_lowercase).
func (t *Tokenizer) normalize(s string) string {
	if t.nfc && !norm.NFC.IsNormalString(s) {
		s = norm.NFC.String(s)
	}
	if !t.collapseWS && !t.lowercase {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	inSpace := false
	for _, r := range s {
		if t.collapseWS && unicode.IsSpace(r) {
			if !inSpace {
				b.WriteByte(' ')
			}
			inSpace = true
			continue
		}
		inSpace = false
		if t.lowercase {
			writeLower(&b, r)
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// writeLower writes Rust's char::to_lowercase(r): Go's unicode.ToLower
// except for the one character whose lowercase is two (İ -> i̇).
func writeLower(b *strings.Builder, r rune) {
	if r == 'İ' {
		b.WriteString("i\u0307")
		return
	}
	b.WriteRune(unicode.ToLower(r))
}

// Cut returns s cut to at most n bytes at a character boundary.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Encode returns the Length() ids of text: BOS, at most Length()-2 content
// tokens, EOS, then padding. Longer texts are cut (the EOS stays), as
// Hugging Face does with truncation on. Any string is valid input; invalid
// UTF-8 bytes read as U+FFFD, as in a JavaScript string.
func (t *Tokenizer) Encode(text string) []int32 {
	out := make([]int32, 0, t.length)
	out = append(out, t.bos)
	limit := t.length - 2
	content := t.tokens(text, limit)
	out = append(out, content...)
	out = append(out, t.eos)
	for len(out) < t.length {
		out = append(out, t.pad)
	}
	return out
}

// Tokens returns the content ids of text (no BOS/EOS, no padding), all of
// them: tests compare it with other tokenizers on long texts.
func (t *Tokenizer) Tokens(text string) []int32 { return t.tokens(text, -1) }

// tokens produces at most limit content ids (limit < 0: all). Work stops
// once limit ids are known: the text is normalised and tokenised a chunk at
// a time, so a megabyte of words costs only its first chunks. Chunks end at
// whitespace, which no piece or added token spans, and which NFC never
// composes with, so chunking changes no id.
func (t *Tokenizer) tokens(text string, limit int) []int32 {
	var ids []int32
	w := &word{}
	for len(text) > 0 && (limit < 0 || len(ids) < limit) {
		cut := len(text)
		if t.chunked {
			cut = chunkEnd(text)
		}
		ids = t.chunkTokens(w, t.normalize(strings.ToValidUTF8(text[:cut], "\uFFFD")), ids, limit)
		text = text[cut:]
	}
	if limit >= 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	return ids
}

// chunkSize is where tokens looks for whitespace to end a chunk.
const chunkSize = 4096

// chunkEnd returns the index of the first whitespace at or after chunkSize
// (len(s) when there is none).
func chunkEnd(s string) int {
	if len(s) <= chunkSize {
		return len(s)
	}
	i := chunkSize
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	for i < len(s) {
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsSpace(r) {
			return i
		}
		i += size
	}
	return len(s)
}

// chunkTokens appends the ids of normalised text s to ids, stopping once
// there are limit (>= 0) of them.
func (t *Tokenizer) chunkTokens(w *word, s string, ids []int32, limit int) []int32 {
	full := func() bool { return limit >= 0 && len(ids) >= limit }
	for len(s) > 0 && !full() {
		// Split out the next added token; the text before it is pre-tokenised.
		at, tok := t.nextAdded(s)
		seg := s[:at]
		for len(seg) > 0 && !full() {
			start, end := nextPiece(seg)
			if start < 0 {
				break
			}
			ids = t.bpe(w, seg[start:end], ids)
			seg = seg[end:]
		}
		if tok == nil {
			break
		}
		if !full() {
			ids = append(ids, tok.id)
		}
		s = s[at+len(tok.content):]
	}
	return ids
}

// nextAdded finds the leftmost (then longest) added token in s; it returns
// len(s), nil when there is none.
func (t *Tokenizer) nextAdded(s string) (int, *addedToken) {
	best, at := -1, len(s)
	for i := range t.added {
		a := &t.added[i]
		j := strings.Index(s[:min(len(s), at+len(a.content))], a.content)
		if j < 0 {
			continue
		}
		if j < at || (j == at && best >= 0 && len(a.content) > len(t.added[best].content)) {
			best, at = i, j
		}
	}
	if best < 0 {
		return len(s), nil
	}
	return at, &t.added[best]
}

// nextPiece finds the first match of clipPattern in s (leftmost, the
// alternatives tried in order, as a backtracking regex does). It returns
// -1, -1 when s holds only whitespace.
func nextPiece(s string) (start, end int) {
	for i := 0; i < len(s); {
		if n := matchAt(s[i:]); n > 0 {
			return i, i + n
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return -1, -1
}

var contractions = []string{"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}

// matchAt returns the length of clipPattern's match at the start of s, or 0.
func matchAt(s string) int {
	for _, lit := range [...]string{"<|startoftext|>", "<|endoftext|>"} {
		if strings.HasPrefix(s, lit) {
			return len(lit)
		}
	}
	if s[0] == '\'' {
		for _, c := range contractions {
			if strings.HasPrefix(s, c) {
				return len(c)
			}
		}
	}
	r, size := utf8.DecodeRuneInString(s)
	switch {
	case unicode.IsLetter(r):
		n := size
		for n < len(s) {
			r, size := utf8.DecodeRuneInString(s[n:])
			if !unicode.IsLetter(r) {
				break
			}
			n += size
		}
		return n
	case unicode.IsNumber(r):
		return size
	case unicode.IsSpace(r):
		return 0
	}
	n := size
	for n < len(s) {
		r, size := utf8.DecodeRuneInString(s[n:])
		if unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.IsSpace(r) {
			break
		}
		n += size
	}
	return n
}

// mergeTable maps a pair of symbol ids to its merge: open addressing with
// linear probing, about twice as fast as a Go map on this hot path (a
// megabyte-long piece does millions of lookups).
type mergeTable struct {
	keys []uint64 // pair key + 1; 0: empty
	vals []merge
	mask uint64
}

func newMergeTable(n int) mergeTable {
	size := 16
	for size < 2*n {
		size *= 2
	}
	return mergeTable{keys: make([]uint64, size), vals: make([]merge, size), mask: uint64(size - 1)}
}

func pairKey(a, b int32) uint64 { return (uint64(uint32(a))<<32 | uint64(uint32(b))) + 1 }

func (m *mergeTable) slot(k uint64) uint64 { return (k * 0x9E3779B97F4A7C15) >> 20 & m.mask }

func (m *mergeTable) get(a, b int32) (merge, bool) {
	k := pairKey(a, b)
	for i := m.slot(k); ; i = (i + 1) & m.mask {
		switch m.keys[i] {
		case k:
			return m.vals[i], true
		case 0:
			return merge{}, false
		}
	}
}

func (m *mergeTable) put(a, b int32, v merge) {
	k := pairKey(a, b)
	i := m.slot(k)
	for m.keys[i] != 0 && m.keys[i] != k {
		i = (i + 1) & m.mask
	}
	m.keys[i], m.vals[i] = k, v
}
