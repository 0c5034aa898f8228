package scenarios

import (
	"fmt"
	"text/template"
	"text/template/parse"
)

// Limits a scenario is held to at load, before anything is allocated for it:
// a number that would exhaust memory, or a string MQTT cannot carry, is an
// error naming its line rather than a crash (or 14 GB) later.
const (
	// MaxClients bounds the clients of one scenario (all groups together):
	// far above what one machine's descriptors allow (20,000 here), low
	// enough that expanding client ids stays small.
	MaxClients = 1_000_000
	// MaxPayload is the largest payload MQTT can carry in one PUBLISH.
	MaxPayload = 268_435_455
	// MaxString is the longest MQTT string (client ids, topics, filters).
	MaxString = 65_535
	// MaxMessages bounds the messages of one publisher.
	MaxMessages = 1_000_000_000
)

// validateLimits checks counts and sizes before validation expands anything,
// and reports whether client ids may be expanded safely.
func (s *Scenario) validateLimits(bad func(path, format string, args ...interface{})) bool {
	total, ok := 0, true
	count := func(path string, n int) {
		if n > MaxClients {
			bad(path, "at most %d clients (got %d)", MaxClients, n)
			ok = false
			return
		}
		total += max(n, 0)
	}
	str := func(path, v string) {
		if len(v) > MaxString {
			bad(path, "at most %d bytes, MQTT's longest string (got %d)", MaxString, len(v))
		}
	}
	for i, p := range s.Publishers {
		path := fmt.Sprintf("publishers[%d]", i)
		count(path+".count", p.Count)
		str(path+".client_id", p.ClientID)
		str(path+".topic", p.Topic)
		if p.Messages > MaxMessages {
			bad(path+".messages", "at most %d per publisher (got %d)", MaxMessages, p.Messages)
		}
		if p.Payload.Size < 0 || p.Payload.Size > MaxPayload {
			bad(path+".payload.size", "must be 0..%d bytes, MQTT's largest payload (got %d)", MaxPayload, p.Payload.Size)
		}
		if p.Payload.Kind == "template" && p.Payload.Template != "" {
			if err := checkTemplateSizes(p.Payload.Template); err != nil {
				bad(path+".payload.template", "%v", err)
			}
		}
	}
	for i, sub := range s.Subscribers {
		path := fmt.Sprintf("subscribers[%d]", i)
		count(path+".count", sub.Count)
		str(path+".client_id", sub.ClientID)
		str(path+".filter", sub.Filter)
	}
	if total > MaxClients {
		bad("publishers", "the scenario has %d clients, at most %d", total, MaxClients)
		ok = false
	}
	return ok
}

// checkTemplateSizes finds every {{.Random N}} of a payload template: N must
// be a constant from 0 to MaxPayload, so no template can ask for more than a
// PUBLISH holds, or a negative size, when the run is already under way.
func checkTemplateSizes(text string) error {
	t, err := template.New("p").Funcs(template.FuncMap{"Random": func(int) string { return "" }}).Parse(text)
	if err != nil {
		return err
	}
	var walk func(n parse.Node) error
	walk = func(n parse.Node) error {
		switch n := n.(type) {
		case *parse.ListNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Nodes {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.ActionNode:
			return walk(n.Pipe)
		case *parse.IfNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.RangeNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.WithNode:
			return walkBranch(walk, &n.BranchNode)
		case *parse.PipeNode:
			if n == nil {
				return nil
			}
			for _, c := range n.Cmds {
				if err := walk(c); err != nil {
					return err
				}
			}
		case *parse.CommandNode:
			for i, a := range n.Args {
				if f, ok := a.(*parse.FieldNode); ok && len(f.Ident) == 1 && f.Ident[0] == "Random" {
					return checkRandomArgs(n.Args[i+1:])
				}
				if err := walk(a); err != nil {
					return err
				}
			}
		}
		return nil
	}
	return walk(t.Tree.Root)
}

func walkBranch(walk func(parse.Node) error, b *parse.BranchNode) error {
	// walk takes typed nil lists and pipes, so an absent else is fine.
	for _, n := range []parse.Node{b.Pipe, b.List, b.ElseList} {
		if err := walk(n); err != nil {
			return err
		}
	}
	return nil
}

func checkRandomArgs(args []parse.Node) error {
	if len(args) != 1 {
		return fmt.Errorf("{{.Random N}} takes one number (got %d arguments)", len(args))
	}
	num, ok := args[0].(*parse.NumberNode)
	if !ok || !num.IsInt {
		return fmt.Errorf("{{.Random N}} needs a whole number written in the template (got %s)", args[0])
	}
	if num.Int64 < 0 || num.Int64 > MaxPayload {
		return fmt.Errorf("{{.Random %d}}: must be 0..%d bytes, MQTT's largest payload", num.Int64, MaxPayload)
	}
	return nil
}
