// Package oracle checks netsleuth's NetworkPolicy engine against an engine we
// did not write: the matcher of github.com/mattfenwick/cyclonus. It is a
// separate module so that cyclonus and its dependencies stay out of the
// product's go.mod.
package oracle
