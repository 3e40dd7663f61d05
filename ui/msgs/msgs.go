// Package msgs holds the messages the TUI's packages send each other:
// nouns with a past-tense verb, tagged with what they belong to.
package msgs

// PromptPurpose says what a prompt asks for.
type PromptPurpose int

// The prompts.
const (
	PromptFilter PromptPurpose = iota + 1
	PromptTarget
	PromptPolicy
	PromptExport
)

// PromptSubmittedMsg carries the values a prompt collected (one per step).
type PromptSubmittedMsg struct {
	Purpose PromptPurpose
	Values  []string
}

// PromptChangedMsg is sent as the user types (the live filter).
type PromptChangedMsg struct {
	Purpose PromptPurpose
	Value   string
}

// PromptCancelledMsg says the user pressed Esc in a prompt.
type PromptCancelledMsg struct{ Purpose PromptPurpose }
