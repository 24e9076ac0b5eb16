package apply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
)

// Audit records are evidence, never instructions: anyone allowed to write the table could
// otherwise plant a record that the applier, the sweeper or `kmsfix revert` acts on. Every
// record therefore carries an HMAC that only a holder of the audit key can produce (the
// function role and a named break-glass role: the key policy is the fence), and every read
// checks it. A record that fails the check is never acted on: it is reported and left.
//
// The HMAC comes from KMS (GenerateMac/VerifyMac with an HMAC_256 key,
// https://docs.aws.amazon.com/kms/latest/APIReference/API_GenerateMac.html): the secret never
// leaves KMS, and the key policy says who may seal. Messages are limited to 4,096 bytes, so
// the MAC covers a SHA-256 digest of the record's canonical form.

// ErrTampered means an audit record's integrity code is missing or wrong: the record was not
// written by kmsfix (or was changed since), and nothing is done on its word.
var ErrTampered = errors.New("audit record fails its integrity check (not written by kmsfix, or changed since)")

// Sealer computes and checks the records' integrity codes.
type Sealer interface {
	// Seal returns the MAC of msg.
	Seal(ctx context.Context, msg []byte) ([]byte, error)
	// Check returns nil when mac is msg's MAC, an error wrapping ErrTampered when it is not,
	// and another error when it could not be checked.
	Check(ctx context.Context, msg, mac []byte) error
}

// MacAPI is KMS's HMAC operations; *kms.Client satisfies it.
type MacAPI interface {
	GenerateMac(ctx context.Context, in *kms.GenerateMacInput, opts ...func(*kms.Options)) (*kms.GenerateMacOutput, error)
	VerifyMac(ctx context.Context, in *kms.VerifyMacInput, opts ...func(*kms.Options)) (*kms.VerifyMacOutput, error)
}

// KMSSealer seals with an HMAC_256 KMS key (KMSFIX_AUDIT_KEY_ARN).
type KMSSealer struct {
	API   MacAPI
	KeyID string
}

func digest(msg []byte) []byte {
	h := sha256.Sum256(msg)
	return []byte("kmsfix-audit-v1:" + hex.EncodeToString(h[:]))
}

// Seal implements Sealer.
func (k KMSSealer) Seal(ctx context.Context, msg []byte) ([]byte, error) {
	out, err := k.API.GenerateMac(ctx, &kms.GenerateMacInput{
		KeyId: &k.KeyID, Message: digest(msg), MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256,
	})
	if err != nil {
		return nil, fmt.Errorf("audit: GenerateMac with %s: %w", k.KeyID, err)
	}
	return out.Mac, nil
}

// Check implements Sealer. KMS answers KMSInvalidMacException for a wrong MAC.
func (k KMSSealer) Check(ctx context.Context, msg, mac []byte) error {
	if len(mac) == 0 {
		return fmt.Errorf("%w: no integrity code", ErrTampered)
	}
	out, err := k.API.VerifyMac(ctx, &kms.VerifyMacInput{
		KeyId: &k.KeyID, Message: digest(msg), Mac: mac, MacAlgorithm: kmstypes.MacAlgorithmSpecHmacSha256,
	})
	var bad *kmstypes.KMSInvalidMacException
	switch {
	case errors.As(err, &bad):
		return fmt.Errorf("%w: %s", ErrTampered, bad.ErrorMessage())
	case err != nil:
		return fmt.Errorf("audit: VerifyMac with %s: %w", k.KeyID, err)
	case !out.MacValid:
		return ErrTampered
	}
	return nil
}
