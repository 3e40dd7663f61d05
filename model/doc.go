// Package model holds netsleuth's pure domain types.
package model
