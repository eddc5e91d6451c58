//go:build js && wasm

package main

import (
	"context"
	"math"
	"syscall/js"

	"github.com/imgembed/imgembed/wasm/api"
	"github.com/imgembed/imgembed/wasm/loader"
	"github.com/imgembed/imgembed/wasm/ops"
	"github.com/imgembed/imgembed/wasm/textmodel"
	"github.com/imgembed/imgembed/wasm/tokenizer"
	"github.com/imgembed/imgembed/weights"
)

// textPart is a loaded text tower and its tokenizer.
type textPart struct {
	tm  *textmodel.Model
	tok *tokenizer.Tokenizer
	// logitScale is exp(logit_scale) from the file (100 for OpenAI CLIP),
	// 0 when the file has none.
	logitScale float64
}

// towersOf reads opts.towers: an array of "vision" and "text" (default
// ["vision"]).
func towersOf(opts js.Value) (loader.Towers, error) {
	v := opts.Get("towers")
	if v.Type() == js.TypeUndefined || v.Type() == js.TypeNull {
		return loader.Vision, nil
	}
	if !isInstance(v, jsArray) || v.Length() == 0 {
		return 0, coded(codeInvalidInput, nil, "load: towers must be a non-empty array of \"vision\" and \"text\"")
	}
	var t loader.Towers
	for i := 0; i < v.Length(); i++ {
		e := v.Index(i)
		switch {
		case e.Type() == js.TypeString && e.String() == "vision":
			t |= loader.Vision
		case e.Type() == js.TypeString && e.String() == "text":
			t |= loader.Text
		default:
			return 0, coded(codeInvalidInput, nil, "load: unknown tower %s", e.String())
		}
	}
	return t, nil
}

// tokenizerOf parses opts.tokenizer (the text of a tokenizer.json), which a
// text load requires.
func tokenizerOf(opts js.Value) (*tokenizer.Tokenizer, error) {
	v := opts.Get("tokenizer")
	if v.Type() != js.TypeString {
		return nil, coded(codeInvalidInput, nil, "load: the text tower needs tokenizer (the contents of tokenizer.json)")
	}
	tok, err := tokenizer.Parse([]byte(v.String()))
	if err != nil {
		return nil, coded(codeInvalidModel, err, "load: tokenizer.json")
	}
	return tok, nil
}

// loadText builds the text tower of f.
func loadText(o ops.Ops, f *loader.File, tok *tokenizer.Tokenizer, get weights.Getter) (*textPart, error) {
	cfg := *f.Text
	if tok.VocabSize() > cfg.VocabSize {
		return nil, coded(codeInvalidModel, nil, "load: the tokenizer has %d ids, the text tower's vocabulary only %d", tok.VocabSize(), cfg.VocabSize)
	}
	if tok.Length() > cfg.ContextLength {
		return nil, coded(codeInvalidModel, nil, "load: the tokenizer makes %d ids, the text tower has %d positions", tok.Length(), cfg.ContextLength)
	}
	tm, err := textmodel.LoadWith(o, cfg, get, textmodel.LoadOptions{Copies: true}) // jsops copies into JS
	if err != nil {
		return nil, coded(codeInvalidModel, err, "load: building the text graph")
	}
	tp := &textPart{tm: tm, tok: tok}
	if _, ok := f.Tensor(weights.KeyLogitScale); ok {
		if v, _, err := get(weights.KeyLogitScale, nil); err == nil && len(v) == 1 {
			tp.logitScale = math.Exp(float64(v[0]))
		}
	}
	return tp, nil
}

func textConfigObject(c weights.TextConfig, logitScale float64) js.Value {
	o := jsObject.New()
	if logitScale > 0 {
		o.Set("logitScale", logitScale)
	}
	o.Set("embeddingSize", c.ProjectionDim)
	o.Set("hiddenSize", c.HiddenSize)
	o.Set("layers", c.NumLayers)
	o.Set("heads", c.NumHeads)
	o.Set("mlpSize", c.IntermediateSize)
	o.Set("vocabSize", c.VocabSize)
	o.Set("contextLength", c.ContextLength)
	return o
}

// forwardText embeds every input of a text call; failures are per input
// (a non-string is InvalidInput).
func (m *model) forwardText(ctx context.Context, inputs js.Value) js.Value {
	n := inputs.Length()
	out := jsArray.New(n)
	if m.text == nil {
		for i := 0; i < n; i++ {
			out.SetIndex(i, errorObject(coded(codeInvalidInput, nil, "this model was loaded without its text tower"), codeInvalidInput))
		}
		return out
	}
	var rows [][]int32
	var idx []int
	flush := func() {
		if len(idx) == 0 {
			return
		}
		if ctx.Err() != nil {
			for _, i := range idx {
				out.SetIndex(i, errorObject(coded(codeAborted, nil, "forward aborted"), codeAborted))
			}
		} else {
			embs, err := func() ([][]float32, error) {
				defer m.o.Begin()() // see jsops.Begin
				return m.text.tm.Forward(rows, m.text.tok.EOS())
			}()
			for k, i := range idx {
				if err != nil {
					out.SetIndex(i, errorObject(coded(codeInvalidInput, err, "forward"), codeInvalidInput))
					continue
				}
				out.SetIndex(i, m.o.Float32Array(embs[k]))
			}
		}
		rows, idx = rows[:0], idx[:0]
	}
	for i := 0; i < n; i++ {
		v := inputs.Index(i)
		if v.Type() != js.TypeString {
			out.SetIndex(i, errorObject(coded(codeInvalidInput, nil, "text input %d is a %s, not a string", i, v.Type()), codeInvalidInput))
			continue
		}
		rows = append(rows, m.text.tok.Encode(tokenizer.Cut(v.String(), api.MaxTextBytes)))
		idx = append(idx, i)
		if len(idx) == m.maxBatch {
			flush()
		}
	}
	flush()
	return out
}

func (t *textPart) dispose() {
	if t != nil {
		t.tm.Dispose()
	}
}
