package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// This file is a small compiler from boolean expressions over packet
// loads to classic BPF: each expression is generated with a true and a
// false label (short-circuit code), and labels are resolved afterwards,
// with a long jump inserted where a conditional jump would be farther than
// its 8-bit offset reaches.

type label int

// pinsn is an instruction before assembly: a plain instruction, a
// conditional jump on A to labels, an unconditional jump, or a label.
type pinsn struct {
	ins   bpf.Instruction
	cond  bpf.JumpTest
	val   uint32
	t, f  label
	kind  uint8
	label label
}

const (
	kPlain uint8 = iota
	kCond
	kJump
	kLabel
)

type prog struct {
	code    []pinsn
	nlabels int
}

func (p *prog) newLabel() label { p.nlabels++; return label(p.nlabels) }
func (p *prog) mark(l label)    { p.code = append(p.code, pinsn{kind: kLabel, label: l}) }
func (p *prog) emit(i bpf.Instruction) {
	p.code = append(p.code, pinsn{kind: kPlain, ins: i})
}
func (p *prog) jumpIf(c bpf.JumpTest, v uint32, t, f label) {
	p.code = append(p.code, pinsn{kind: kCond, cond: c, val: v, t: t, f: f})
}
func (p *prog) jump(l label) { p.code = append(p.code, pinsn{kind: kJump, t: l}) }

// expr is a boolean condition on the packet.
type expr interface{ gen(p *prog, t, f label) }

type allOf []expr
type anyOf []expr
type constant bool

// test loads a value (after the pre instructions, e.g. loading X) and is
// true when A op v holds for any of vals; neg inverts it.
type test struct {
	pre  []bpf.Instruction
	load bpf.Instruction
	op   bpf.JumpTest
	vals []uint32
	neg  bool
}

func (e allOf) gen(p *prog, t, f label) {
	for i, x := range e {
		if i == len(e)-1 {
			x.gen(p, t, f)
			return
		}
		next := p.newLabel()
		x.gen(p, next, f)
		p.mark(next)
	}
	p.jump(t) // empty: true
}

func (e anyOf) gen(p *prog, t, f label) {
	for i, x := range e {
		if i == len(e)-1 {
			x.gen(p, t, f)
			return
		}
		next := p.newLabel()
		x.gen(p, t, next)
		p.mark(next)
	}
	p.jump(f) // empty: false
}

func (c constant) gen(p *prog, t, f label) {
	if c {
		p.jump(t)
	} else {
		p.jump(f)
	}
}

func (e test) gen(p *prog, t, f label) {
	if e.neg {
		t, f = f, t
	}
	for _, i := range e.pre {
		p.emit(i)
	}
	p.emit(e.load)
	for i, v := range e.vals {
		if i == len(e.vals)-1 {
			p.jumpIf(e.op, v, t, f)
			return
		}
		next := p.newLabel()
		p.jumpIf(e.op, v, t, next)
		p.mark(next)
	}
	p.jump(f)
}

// compile generates e with accept returning snap bytes and reject 0.
func compile(e expr, snap uint32) ([]bpf.Instruction, error) {
	p := &prog{}
	accept, reject := p.newLabel(), p.newLabel()
	e.gen(p, accept, reject)
	p.mark(accept)
	p.emit(bpf.RetConstant{Val: snap})
	p.mark(reject)
	p.emit(bpf.RetConstant{Val: 0})
	return p.assemble()
}

// positions maps each label to the index of the instruction it precedes,
// and each code entry to its instruction index.
func (p *prog) positions() (labels map[label]int, at []int) {
	labels = map[label]int{}
	at = make([]int, len(p.code))
	n := 0
	for i, c := range p.code {
		at[i] = n
		if c.kind == kLabel {
			labels[c.label] = n
		} else {
			n++
		}
	}
	return labels, at
}

// dropJumpsToNext removes unconditional jumps to the label right after them.
func (p *prog) dropJumpsToNext() {
	out := p.code[:0]
	for i, c := range p.code {
		if c.kind == kJump && i+1 < len(p.code) && p.code[i+1].kind == kLabel && p.code[i+1].label == c.t {
			continue
		}
		out = append(out, c)
	}
	p.code = out
}

// relax inserts a long jump after each conditional jump whose target is
// out of reach; it reports whether it changed anything.
func (p *prog) relax() bool {
	labels, at := p.positions()
	for i, c := range p.code {
		if c.kind != kCond {
			continue
		}
		for _, tgt := range []*label{&p.code[i].t, &p.code[i].f} {
			if labels[*tgt]-(at[i]+1) > 255 {
				far := *tgt
				near := p.newLabel()
				*tgt = near
				tramp := []pinsn{{kind: kLabel, label: near}, {kind: kJump, t: far}}
				p.code = append(p.code[:i+1], append(tramp, p.code[i+1:]...)...)
				return true
			}
		}
	}
	return false
}

func (p *prog) assemble() ([]bpf.Instruction, error) {
	p.dropJumpsToNext()
	for p.relax() {
	}
	labels, at := p.positions()
	var out []bpf.Instruction
	for i, c := range p.code {
		switch c.kind {
		case kPlain:
			out = append(out, c.ins)
		case kJump:
			out = append(out, bpf.Jump{Skip: uint32(labels[c.t] - at[i] - 1)})
		case kCond:
			out = append(out, bpf.JumpIf{Cond: c.cond, Val: c.val,
				SkipTrue: uint8(labels[c.t] - at[i] - 1), SkipFalse: uint8(labels[c.f] - at[i] - 1)})
		}
	}
	if len(out) > bpfMaxInstructions {
		return nil, fmt.Errorf("the filter needs %d BPF instructions, more than the kernel's %d", len(out), bpfMaxInstructions)
	}
	return out, nil
}

// bpfMaxInstructions is the kernel's limit on a classic BPF program.
const bpfMaxInstructions = 4096
