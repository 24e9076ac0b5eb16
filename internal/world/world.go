// Package world holds what the remediator knows about keys and principals (docs/contract.md
// section 2). Absent means unknown, which is different from empty.
package world

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/kmsfix/kmsfix/internal/policy"
)

// Key managers and the states KMS reports.
const (
	ManagerCustomer = "CUSTOMER"
	ManagerAWS      = "AWS"

	StateEnabled                = "Enabled"
	StateDisabled               = "Disabled"
	StatePendingDeletion        = "PendingDeletion"
	StatePendingReplicaDeletion = "PendingReplicaDeletion"
	StatePendingImport          = "PendingImport"
	StateUnavailable            = "Unavailable"
	StateCreating               = "Creating"
	StateUpdating               = "Updating"
)

// World is the world file.
type World struct {
	SandboxAccounts []string              `json:"sandbox_accounts,omitempty"`
	Keys            map[string]*Key       `json:"keys,omitempty"`
	MissingKeys     []string              `json:"missing_keys,omitempty"`
	Principals      map[string]*Principal `json:"principals,omitempty"`
	// Accounts is what is known of AWS accounts (their organization), by account id.
	Accounts map[string]*Account `json:"accounts,omitempty"`
	// Unreadable lists what a live lookup tried and could not read (added to the contract), so
	// a finding can say what it did not know.
	Unreadable []string `json:"unreadable,omitempty"`
}

// Key is what is known of one KMS key. Nil or empty fields are unknown; an empty list or
// map (aliases, tags) means known to be empty.
type Key struct {
	Manager string           `json:"manager,omitempty"`
	State   string           `json:"state,omitempty"`
	Aliases []string         `json:"aliases,omitzero"` // kms:ResourceAliases
	Policy  *policy.Document `json:"policy,omitempty"`
	Grants  []Grant          `json:"grants,omitempty"`
	// DescribeKey's KeySpec, KeyUsage and Origin (kms:KeySpec, kms:KeyUsage, kms:KeyOrigin)
	// and MultiRegion (kms:MultiRegion; nil: unknown).
	KeySpec     string `json:"key_spec,omitempty"`
	KeyUsage    string `json:"key_usage,omitempty"`
	Origin      string `json:"origin,omitempty"`
	MultiRegion *bool  `json:"multi_region,omitempty"`
	// Tags are the key's tags (aws:ResourceTag/<key>).
	Tags map[string]string `json:"tags,omitzero"`
	// GrantsKnown says Grants was read (an empty list then means no grants).
	GrantsKnown bool `json:"grants_known,omitempty"`
}

// Grant is a KMS grant.
type Grant struct {
	ID          string            `json:"id,omitempty"`
	Name        string            `json:"name,omitempty"`
	Grantee     string            `json:"grantee"`
	Operations  []string          `json:"operations"`
	Constraints *GrantConstraints `json:"constraints,omitempty"`
}

// GrantConstraints are KMS grant encryption-context constraints.
type GrantConstraints struct {
	EncryptionContextEquals map[string]string `json:"encryption_context_equals,omitempty"`
	EncryptionContextSubset map[string]string `json:"encryption_context_subset,omitempty"`
}

// Principal is what is known of one IAM role or user. Policies nil means unknown; an empty
// list means the principal has no identity policies.
type Principal struct {
	Policies            []NamedPolicy    `json:"policies"`
	PermissionsBoundary *policy.Document `json:"permissions_boundary,omitempty"`
	// Tags are the role's or user's tags (aws:PrincipalTag/<key>); nil: unknown. A role
	// session's own tags, which override them, are not in a KMS record: for a role they are
	// the tags the session has unless it was given session tags.
	Tags map[string]string `json:"tags,omitzero"`
}

// Account is what is known of one AWS account.
type Account struct {
	// OrgID is the id of its AWS Organizations organization (aws:PrincipalOrgID,
	// aws:ResourceOrgID); "" unknown.
	OrgID string `json:"org_id,omitempty"`
	// OrgPaths are its organization paths ("o-a1b2c3d4e5/r-ab12/ou-ab12-11111111/"), for
	// aws:PrincipalOrgPaths; nil unknown.
	OrgPaths []string `json:"org_paths,omitzero"`
}

// NamedPolicy is one identity policy (inline or attached).
type NamedPolicy struct {
	Name     string           `json:"name"`
	Document *policy.Document `json:"document"`
}

// Load reads a world file.
func Load(path string) (*World, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	w, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return w, nil
}

// Parse reads a world document strictly (see strict.go) and checks its policies.
func Parse(b []byte) (*World, error) {
	var w World
	if !json.Valid(b) {
		err := json.Unmarshal(b, &w)
		return nil, fmt.Errorf("world is not valid JSON: %w", err)
	}
	b, err := strict(b)
	if err != nil {
		return nil, fmt.Errorf("world does not follow the world-file format (docs/contract.md section 2): %w", err)
	}
	if err := json.Unmarshal(b, &w); err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("world is not valid JSON: %w", err)
		}
		return nil, fmt.Errorf("world does not follow the world-file format (docs/contract.md section 2): %w", err)
	}
	for arn, k := range w.Keys {
		if k == nil {
			return nil, fmt.Errorf("key %s: null", arn)
		}
		if k.Policy != nil {
			if err := k.Policy.Validate(); err != nil {
				return nil, fmt.Errorf("key %s policy: %w", arn, err)
			}
		}
		if k.Grants != nil {
			k.GrantsKnown = true
		}
	}
	for id, a := range w.Accounts {
		if a == nil {
			return nil, fmt.Errorf("account %s: null", id)
		}
	}
	for arn, p := range w.Principals {
		if p == nil {
			return nil, fmt.Errorf("principal %s: null", arn)
		}
		for _, np := range p.Policies {
			if np.Document == nil {
				return nil, fmt.Errorf("principal %s policy %q: no document", arn, np.Name)
			}
			if err := np.Document.Validate(); err != nil {
				return nil, fmt.Errorf("principal %s policy %q: %w", arn, np.Name, err)
			}
		}
		if p.PermissionsBoundary != nil {
			if err := p.PermissionsBoundary.Validate(); err != nil {
				return nil, fmt.Errorf("principal %s permissions boundary: %w", arn, err)
			}
		}
	}
	return &w, nil
}

// IsSandbox says whether an account is listed as a sandbox.
func (w *World) IsSandbox(account string) bool {
	return w != nil && slices.Contains(w.SandboxAccounts, account)
}

// Key returns what is known of a key, or nil.
func (w *World) Key(arn string) *Key {
	if w == nil {
		return nil
	}
	return w.Keys[arn]
}

// KeyMissing says the world knows the key does not exist.
func (w *World) KeyMissing(arn string) bool {
	return w != nil && slices.Contains(w.MissingKeys, arn)
}

// Principal returns what is known of a principal, or nil.
func (w *World) Principal(arn string) *Principal {
	if w == nil {
		return nil
	}
	return w.Principals[arn]
}

// Account returns what is known of an account, or nil.
func (w *World) Account(id string) *Account {
	if w == nil {
		return nil
	}
	return w.Accounts[id]
}

// UnreadableList returns what live lookups could not read.
func (w *World) UnreadableList() []string {
	if w == nil {
		return nil
	}
	return w.Unreadable
}
