package tokenizer

import (
	"slices"
	"testing"
)

// FuzzEncode: any string gives Length() ids, BOS first, an EOS after the
// content, every id in the vocabulary, and the cut ids are the start of the
// uncut ones (the early stop in tokens changes nothing).
func FuzzEncode(f *testing.F) {
	tk := load(f)
	for _, s := range []string{"", "a photo of a cat", "It's 3:45 p.m.!!!", "Cafe\u0301", "🐶🐱 👍🏽", "東京の猫",
		"a<|endoftext|>b", "<|startoftext|>", "\xff\xfe", "İ ΟΔΟΣ", "a\u00a0b\u3000c", "'s'll'd"} {
		f.Add(s)
	}
	vocab := int32(tk.VocabSize())
	f.Fuzz(func(t *testing.T, s string) {
		ids := tk.Encode(s)
		if len(ids) != tk.Length() {
			t.Fatalf("%d ids", len(ids))
		}
		if ids[0] != tk.BOS() {
			t.Fatalf("first id %d, want BOS", ids[0])
		}
		full := tk.Tokens(s)
		n := min(len(full), tk.Length()-2)
		if !slices.Equal(ids[1:1+n], full[:n]) {
			t.Fatalf("cut ids %v are not the start of %v", ids[1:1+n], full)
		}
		if ids[1+n] != tk.EOS() {
			t.Fatalf("id %d after the content is %d, want EOS", 1+n, ids[1+n])
		}
		for i, id := range ids {
			if id < 0 || id >= vocab {
				t.Fatalf("id %d at %d out of range", id, i)
			}
			if i > 1+n && id != tk.Pad() {
				t.Fatalf("id %d at %d, want padding", id, i)
			}
		}
	})
}
