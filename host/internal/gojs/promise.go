package gojs

// PromiseState is pending, fulfilled or rejected.
type PromiseState int

// Promise states.
const (
	Pending PromiseState = iota
	Fulfilled
	Rejected
)

// Promise is a JS Promise bound to one Runtime's microtask queue. Reactions
// run as microtasks on the loop goroutine, after the current guest call
// returns, as in JS.
type Promise struct {
	Object
	rt        *Runtime
	state     PromiseState
	result    Value
	reactions []func()
	handled   bool
}

// NewPromise returns a pending promise with its resolve and reject
// functions. They must be called on the loop goroutine (from a host Func, a
// microtask, or a function passed to Post/Async); resolving with a promise or
// thenable adopts its state; calls after the first are ignored.
func (rt *Runtime) NewPromise() (p *Promise, resolve func(Value), reject func(Value)) {
	p = &Promise{rt: rt}
	done := false
	resolve = func(v Value) {
		if done {
			return
		}
		done = true
		p.resolveWith(normalize(v))
	}
	reject = func(v Value) {
		if done {
			return
		}
		done = true
		p.settle(Rejected, normalize(v))
	}
	return p, resolve, reject
}

// ResolvedPromise returns a promise fulfilled with v (Promise.resolve).
func (rt *Runtime) ResolvedPromise(v Value) *Promise {
	if p, ok := v.(*Promise); ok {
		return p
	}
	p, resolve, _ := rt.NewPromise()
	resolve(v)
	return p
}

// RejectedPromise returns a promise rejected with reason (Promise.reject);
// a Go error is converted with ErrorValue.
func (rt *Runtime) RejectedPromise(reason Value) *Promise {
	p, _, reject := rt.NewPromise()
	reject(reason)
	return p
}

// State returns the promise's state.
func (p *Promise) State() PromiseState { return p.state }

// Result returns the fulfilment value or rejection reason (undefined while
// pending).
func (p *Promise) Result() Value { return p.result }

func (p *Promise) resolveWith(v Value) {
	if v == Value(p) {
		p.settle(Rejected, NewTypeError("Chaining cycle detected for promise"))
		return
	}
	if q, ok := v.(*Promise); ok {
		p.rt.enqueue(func() {
			q.subscribe(func() {
				p.settle(q.state, q.result)
			})
		})
		return
	}
	if _, ok := v.(propertyHolder); ok {
		if then, ok := GetProperty(v, "then").(*Function); ok && then.Call != nil {
			// Thenable: call then(resolve, reject) in a job, like the spec.
			p.rt.enqueue(func() {
				once := false
				res := NewFunc("", func(_ Value, a []Value) (Value, error) {
					if !once {
						once = true
						p.resolveWith(arg0(a))
					}
					return nil, nil
				})
				rej := NewFunc("", func(_ Value, a []Value) (Value, error) {
					if !once {
						once = true
						p.settle(Rejected, arg0(a))
					}
					return nil, nil
				})
				if _, err := p.rt.Invoke(then, v, res, rej); err != nil && !once {
					if p.rt.fatal(err) {
						return
					}
					once = true
					p.settle(Rejected, ErrorValue(err))
				}
			})
			return
		}
	}
	p.settle(Fulfilled, v)
}

func (p *Promise) settle(state PromiseState, v Value) {
	if p.state != Pending {
		return
	}
	p.state, p.result = state, v
	rs := p.reactions
	p.reactions = nil
	for _, r := range rs {
		p.rt.enqueue(r)
	}
}

// subscribe runs fn (as a microtask) once p is settled.
func (p *Promise) subscribe(fn func()) {
	p.handled = true
	if p.state == Pending {
		p.reactions = append(p.reactions, fn)
		return
	}
	p.rt.enqueue(fn)
}

// Then is promise.then for Go callbacks: the returned promise is resolved
// with what the callback returns, or rejected with its error. A nil callback
// passes the state through.
func (p *Promise) Then(onFulfilled, onRejected func(Value) (Value, error)) *Promise {
	q, resolve, reject := p.rt.NewPromise()
	p.subscribe(func() {
		cb := onFulfilled
		if p.state == Rejected {
			cb = onRejected
		}
		if cb == nil {
			if p.state == Rejected {
				reject(p.result)
			} else {
				resolve(p.result)
			}
			return
		}
		v, err := cb(p.result)
		if err != nil {
			if p.rt.fatal(err) {
				return
			}
			reject(ErrorValue(err))
			return
		}
		resolve(v)
	})
	return q
}

// jsCallback adapts a JS function value (or non-function, meaning "pass
// through") to a Then callback.
func (p *Promise) jsCallback(fn Value) func(Value) (Value, error) {
	f, ok := fn.(*Function)
	if !ok {
		return nil
	}
	return func(v Value) (Value, error) { return p.rt.Invoke(f, nil, v) }
}

func promiseMethod(p *Promise, name string) Value {
	switch name {
	case "then":
		return NewFunc("then", func(_ Value, args []Value) (Value, error) {
			return p.Then(p.jsCallback(arg0(args)), p.jsCallback(argN(args, 1))), nil
		})
	case "catch":
		return NewFunc("catch", func(_ Value, args []Value) (Value, error) {
			return p.Then(nil, p.jsCallback(arg0(args))), nil
		})
	case "finally":
		return NewFunc("finally", func(_ Value, args []Value) (Value, error) {
			f, ok := arg0(args).(*Function)
			if !ok {
				return p.Then(nil, nil), nil
			}
			pass := func(reject bool) func(Value) (Value, error) {
				return func(v Value) (Value, error) {
					r, err := p.rt.Invoke(f, nil)
					if err != nil {
						return nil, err
					}
					// Wait for a returned promise, then restore the original outcome.
					return p.rt.ResolvedPromise(r).Then(func(Value) (Value, error) {
						if reject {
							return nil, &Exception{v}
						}
						return v, nil
					}, nil), nil
				}
			}
			return p.Then(pass(false), pass(true)), nil
		})
	}
	return nil
}

func arg0(a []Value) Value { return argN(a, 0) }

func argN(a []Value, i int) Value {
	if i < len(a) {
		return a[i]
	}
	return nil
}

// promiseClass builds this runtime's Promise constructor.
func (rt *Runtime) promiseClass() *Function {
	f := &Function{Name: "Promise", Prototype: &Object{}}
	f.Construct = func(args []Value) (Value, error) {
		exec, ok := arg0(args).(*Function)
		if !ok || exec.Call == nil {
			return nil, &Exception{NewTypeError("Promise resolver is not a function")}
		}
		p, resolve, reject := rt.NewPromise()
		res := NewFunc("resolve", func(_ Value, a []Value) (Value, error) { resolve(arg0(a)); return nil, nil })
		rej := NewFunc("reject", func(_ Value, a []Value) (Value, error) { reject(arg0(a)); return nil, nil })
		if _, err := rt.Invoke(exec, nil, res, rej); err != nil {
			if rt.fatal(err) {
				return nil, err
			}
			reject(ErrorValue(err))
		}
		return p, nil
	}
	f.HasInstance = func(v Value) bool { _, ok := v.(*Promise); return ok }
	f.Set("resolve", NewFunc("resolve", func(_ Value, a []Value) (Value, error) {
		return rt.ResolvedPromise(arg0(a)), nil
	}))
	f.Set("reject", NewFunc("reject", func(_ Value, a []Value) (Value, error) {
		return rt.RejectedPromise(arg0(a)), nil
	}))
	f.Set("all", NewFunc("all", func(_ Value, a []Value) (Value, error) {
		arr, ok := arg0(a).(*Array)
		if !ok {
			return nil, &Exception{NewTypeError("Promise.all expects an array")}
		}
		return rt.All(arr.Elems...), nil
	}))
	return f
}

// All is Promise.all over values (promises or plain values).
func (rt *Runtime) All(vals ...Value) *Promise {
	p, resolve, reject := rt.NewPromise()
	results := make([]Value, len(vals))
	left := len(vals)
	if left == 0 {
		resolve(NewArray())
		return p
	}
	for i, v := range vals {
		rt.ResolvedPromise(normalize(v)).Then(func(r Value) (Value, error) {
			results[i] = r
			left--
			if left == 0 {
				resolve(NewArray(results...))
			}
			return nil, nil
		}, func(r Value) (Value, error) {
			reject(r)
			return nil, nil
		})
	}
	return p
}
