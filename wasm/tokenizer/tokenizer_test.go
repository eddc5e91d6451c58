package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func load(t testing.TB) *Tokenizer {
	t.Helper()
	data, err := os.ReadFile("../../testdata/tokenizer/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	tk, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

func TestGolden(t *testing.T) {
	tk := load(t)
	data, err := os.ReadFile("../../testdata/golden/text-tokens.json")
	if err != nil {
		t.Fatal(err)
	}
	var golden map[string][]int32
	if err := json.Unmarshal(data, &golden); err != nil {
		t.Fatal(err)
	}
	if len(golden) != 20 {
		t.Fatalf("%d golden texts, want 20", len(golden))
	}
	for text, want := range golden {
		if got := tk.Encode(text); !slices.Equal(got, want) {
			t.Errorf("Encode(%q)\n got %v\nwant %v", text, got, want)
		}
	}
}

func TestSpecialIDs(t *testing.T) {
	tk := load(t)
	if tk.BOS() != 1212 || tk.EOS() != 1213 || tk.Pad() != 1213 || tk.Length() != 77 || tk.VocabSize() != 1214 {
		t.Errorf("BOS %d EOS %d pad %d length %d vocab %d", tk.BOS(), tk.EOS(), tk.Pad(), tk.Length(), tk.VocabSize())
	}
}

// pieces decodes content ids back to the pre-tokenised pieces: each token's
// byte symbols mapped back to bytes, a piece ending at the "</w>" suffix.
func pieces(t *testing.T, tk *Tokenizer, text string) []string {
	t.Helper()
	inv := make(map[int32]string, len(tk.vocab))
	for s, id := range tk.vocab {
		inv[id] = s
	}
	var rb = map[rune]byte{}
	for b, r := range byteToRune {
		rb[r] = byte(b)
	}
	var out []string
	var cur []byte
	for _, id := range tk.Tokens(text) {
		s, ok := inv[id]
		if !ok {
			t.Fatalf("%q: id %d is not in the vocabulary", text, id)
		}
		end := strings.HasSuffix(s, "</w>")
		for _, r := range strings.TrimSuffix(s, "</w>") {
			cur = append(cur, rb[r])
		}
		if end {
			out = append(out, string(cur))
			cur = nil
		}
	}
	if cur != nil {
		t.Fatalf("%q: the last token has no </w>", text)
	}
	return out
}

func TestPieces(t *testing.T) {
	tk := load(t)
	for _, c := range []struct {
		text string
		want []string
	}{
		{"  two   dogs\tplaying\nin the\r\n\fsnow  ", []string{"two", "dogs", "playing", "in", "the", "snow"}},
		{"a\u00a0b\u3000c\u2028d\u0085e\u2003f\u000bg", []string{"a", "b", "c", "d", "e", "f", "g"}},
		{"it's they're we've I'm you'll he'd don't", []string{"it", "'s", "they", "'re", "we", "'ve", "i", "'m", "you", "'ll", "he", "'d", "don", "'t"}},
		{"'sa 'x ''s !!'s rock'n'roll", []string{"'s", "a", "'", "x", "''", "s", "!!'", "s", "rock", "'", "n", "'", "roll"}},
		{"12345 3.14 x2", []string{"1", "2", "3", "4", "5", "3", ".", "1", "4", "x", "2"}},
		{"hello...world???!! ,;:-)", []string{"hello", "...", "world", "???!!", ",;:-)"}},
		{"½ ² ٣", []string{"½", "²", "٣"}}, // \p{N}: No and Nd digits, one each
		{"Café CRÈME", []string{"café", "crème"}},
		{"Cafe\u0301 cre\u0300me", []string{"café", "crème"}}, // NFC first
		{"ÉCOLE ÜBER ÇA", []string{"école", "über", "ça"}},
		{"ΟΔΟΣ", []string{"οδοσ"}},                       // per character: no final sigma
		{"İstanbul", []string{"i", "\u0307", "stanbul"}}, // İ -> i + combining dot (a mark: its own piece)
		{"東京の猫 Москва", []string{"東京の猫", "москва"}},
		{"🐶🐱 best👍🏽friends", []string{"🐶🐱", "best", "👍🏽", "friends"}},
		{"a\xffb", []string{"a", "\ufffd", "b"}},
		{"", nil},
		{" \t\n ", nil},
	} {
		if got := pieces(t, tk, c.text); !slices.Equal(got, c.want) {
			t.Errorf("%q: pieces %q, want %q", c.text, got, c.want)
		}
	}
}

func TestSameIDs(t *testing.T) {
	tk := load(t)
	for _, c := range [][2]string{
		{"Cafe\u0301", "café"},
		{"A PHOTO", "a photo"},
		{"a\t\n photo", "a photo"},
		{" a photo ", "a photo"},
	} {
		if a, b := tk.Encode(c[0]), tk.Encode(c[1]); !slices.Equal(a, b) {
			t.Errorf("%q -> %v\n%q -> %v", c[0], a, c[1], b)
		}
	}
}

func TestSpecialTokensInText(t *testing.T) {
	tk := load(t)
	a, b := tk.Tokens("a")[0], tk.Tokens("b")[0]
	for _, text := range []string{"a<|endoftext|>b", "a <|ENDOFTEXT|> b"} {
		got := tk.Encode(text)[:5]
		if want := []int32{tk.BOS(), a, tk.EOS(), b, tk.EOS()}; !slices.Equal(got, want) {
			t.Errorf("%q: %v, want %v", text, got, want)
		}
	}
	got := tk.Encode("<|startoftext|>")[:3]
	if want := []int32{tk.BOS(), tk.BOS(), tk.EOS()}; !slices.Equal(got, want) {
		t.Errorf("<|startoftext|>: %v, want %v", got, want)
	}
}

func TestEmpty(t *testing.T) {
	tk := load(t)
	got := tk.Encode("")
	want := append([]int32{1212}, slices.Repeat([]int32{1213}, 76)...)
	if !slices.Equal(got, want) {
		t.Errorf("Encode(\"\") = %v", got)
	}
}

func TestTruncation(t *testing.T) {
	tk := load(t)
	a := tk.Tokens("a")[0]
	for _, n := range []int{74, 75, 76, 100} {
		got := tk.Encode(strings.Repeat("a ", n))
		want := []int32{tk.BOS()}
		want = append(want, slices.Repeat([]int32{a}, min(n, 75))...)
		want = append(want, tk.EOS())
		want = append(want, slices.Repeat([]int32{tk.Pad()}, 77-len(want))...)
		if !slices.Equal(got, want) {
			t.Errorf("%d words: %v", n, got)
		}
	}
}

func TestHugeInput(t *testing.T) {
	tk := load(t)
	words := strings.Repeat("the quick brown fox jumps over the lazy dog ", 1<<20/44+1)
	oneWord := strings.Repeat("abcdefgh", 1<<17)
	symbols := strings.Repeat("!?", 1<<19)
	for name, text := range map[string]string{"words": words, "one word": oneWord, "symbols": symbols} {
		start := time.Now()
		got := tk.Encode(text)
		el := time.Since(start)
		if len(got) != 77 || got[0] != tk.BOS() || got[76] != tk.EOS() {
			t.Errorf("%s: %v", name, got)
		}
		if full := tk.Tokens(text); !slices.Equal(got[1:76], full[:75]) {
			t.Errorf("%s: truncated ids differ from the start of the full ids", name)
		}
		// Speed is measured by BenchmarkHugeWord/BenchmarkHugeText, not here.
		t.Logf("%s: %d bytes in %v", name, len(text), el)
	}
}

func TestMalformed(t *testing.T) {
	good, err := os.ReadFile("../../testdata/tokenizer/tokenizer.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(good, &doc); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		json.Unmarshal(good, &m)
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	model := func(m map[string]any) map[string]any { return m["model"].(map[string]any) }
	for name, data := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)/2],
		"not json":  []byte("<html>not found</html>"),
		"array":     []byte("[]"),
		"no model":  edit(func(m map[string]any) { delete(m, "model") }),
		"wordpiece": edit(func(m map[string]any) { model(m)["type"] = "WordPiece" }),
		"no vocab":  edit(func(m map[string]any) { delete(model(m), "vocab") }),
		"bad merge": edit(func(m map[string]any) { model(m)["merges"] = []any{"t h", "zz qq"} }),
		"merge without space": edit(func(m map[string]any) {
			model(m)["merges"] = []any{"th"}
		}),
		"merge number":  edit(func(m map[string]any) { model(m)["merges"] = []any{7} }),
		"vocab strings": edit(func(m map[string]any) { model(m)["vocab"] = map[string]any{"a": "b"} }),
		"unk missing":   edit(func(m map[string]any) { model(m)["unk_token"] = "<unk>" }),
		"no post":       edit(func(m map[string]any) { delete(m, "post_processor") }),
		"bert post": edit(func(m map[string]any) {
			m["post_processor"] = map[string]any{"type": "BertProcessing"}
		}),
		"other split": edit(func(m map[string]any) {
			m["pre_tokenizer"] = map[string]any{"type": "Whitespace"}
		}),
		"other normalizer": edit(func(m map[string]any) {
			m["normalizer"] = map[string]any{"type": "NFKD"}
		}),
		"added token without id": edit(func(m map[string]any) {
			m["added_tokens"] = []any{map[string]any{"content": "<x>"}}
		}),
	} {
		tk, err := Parse(data)
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Parse = %v, %v; want ErrInvalid", name, tk, err)
		}
	}
}

// TestChunking: tokenising a chunk at a time gives the ids of the whole
// text at once, whatever falls at the chunk boundaries.
func TestChunking(t *testing.T) {
	tk := load(t)
	parts := []string{"Cafe", "\u0301", " ", "\t\n", "\u3000", "it", "'s", "!!", "東京", "🐶", "👍🏽", "12", "ÉCOLE", "a", "\xff", "<|endoftext|>", "x"}
	var b strings.Builder
	seed := uint32(7)
	for b.Len() < 5*chunkSize {
		seed = seed*1664525 + 1013904223
		b.WriteString(parts[seed>>16%uint32(len(parts))])
	}
	text := b.String()
	whole := *tk
	whole.chunked = false
	got, want := tk.Tokens(text), whole.Tokens(text)
	if !slices.Equal(got, want) {
		t.Errorf("chunked: %d ids, whole: %d ids, or they differ", len(got), len(want))
	}
}

// BenchmarkHugeWord: a 1 MB text without whitespace is one piece, so the
// whole BPE runs (the cut to 77 cannot stop early).
func BenchmarkHugeWord(b *testing.B) {
	tk := load(b)
	text := strings.Repeat("abcdefgh", 1<<17)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Encode(text)
	}
}

// BenchmarkHugeText: 1 MB of words; only the first chunk is tokenised.
func BenchmarkHugeText(b *testing.B) {
	tk := load(b)
	text := strings.Repeat("the quick brown fox jumps over the lazy dog ", 1<<20/44+1)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tk.Encode(text)
	}
}

func TestCut(t *testing.T) {
	for _, c := range []struct {
		s    string
		n    int
		want string
	}{
		{"abc", 5, "abc"},
		{"abc", 3, "abc"},
		{"abc", 2, "ab"},
		{"aé", 2, "a"}, // é is 2 bytes: not split
		{"a😀b", 4, "a"},
		{"a😀b", 5, "a😀"},
		{"😀", 0, ""},
	} {
		if got := Cut(c.s, c.n); got != c.want {
			t.Errorf("Cut(%q, %d) = %q, want %q", c.s, c.n, got, c.want)
		}
	}
}
