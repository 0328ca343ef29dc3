package dma

import "fmt"

// InvariantError is a broken invariant of dmabench's own code: a model
// asked to free what it never handed out, a page freed twice. It is never
// the user's input (the engine counts misuse as data before a model sees
// it), so it stops the program rather than limping on with a corrupt
// model.
type InvariantError struct {
	// Owner is the package whose rule broke, Rule the rule.
	Owner, Rule string
	Detail      string
}

func (e *InvariantError) Error() string {
	return fmt.Sprintf("dmabench bug: %s: invariant %q broken: %s", e.Owner, e.Rule, e.Detail)
}

// Broken stops the program: owner's rule does not hold. Every model
// reports a broken invariant through it, so each reads the same way.
func Broken(owner, rule, format string, args ...any) {
	panic(&InvariantError{Owner: owner, Rule: rule, Detail: fmt.Sprintf(format, args...)})
}
