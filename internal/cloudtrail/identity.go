package cloudtrail

import (
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/arn"
)

// Why a principal cannot be edited with an inline policy (Identity.NotEditable).
const (
	whySSO        = "IAM Identity Center manages this role: change the permission set (in the management or delegated administrator account)"
	whySLR        = "a service-linked role: IAM cannot edit its policies; grant it in the key policy or with a grant"
	whyRoot       = "the root user: do not grant the root user; use an IAM role or user"
	whyAnonymous  = "an anonymous request: there is no principal to grant"
	whyAWSAccount = "a principal of another account that this copy of the event does not name"
	whyAWSService = "an AWS service acting as itself"
	whyUnknown    = "the event does not name an IAM principal"
	whyNoIssuer   = "the event does not name the IAM user behind this federated session"

	noteFederated = "a GetFederationToken session: its session policy also limits it, so the user's own policy may not be enough"
	notePath      = "no sessionIssuer in the event: the role ARN was rebuilt from the session ARN and its path is unknown"
)

// identityOf reduces userIdentity to the principal a fix must name.
func identityOf(u *userIdentity) Identity {
	if u == nil {
		return Identity{Kind: KindUnknown, NotEditable: whyUnknown}
	}
	id := Identity{Type: u.Type, SessionARN: u.ARN, PrincipalID: u.PrincipalID, Account: u.AccountID}
	var issuer *sessionIssuer
	if u.SessionContext != nil {
		issuer = u.SessionContext.SessionIssuer
	}
	if id.Account == "" && issuer != nil {
		id.Account = issuer.AccountID
	}

	switch u.Type {
	case "AWSService":
		id.Kind, id.NotEditable = KindAWSService, whyAWSService
	case "AWSAccount":
		if isAnonymous(u) { // S3 logs anonymous requests as AWSAccount ANONYMOUS_PRINCIPAL
			id.Kind, id.NotEditable = KindAnonymous, whyAnonymous
			break
		}
		id.Kind, id.NotEditable = KindAWSAccount, whyAWSAccount
	case "Root":
		rootIdentity(&id)
	case "IAMUser":
		fromARN(&id, u.ARN)
		if id.Kind == "" {
			id.Kind, id.NotEditable = KindUser, whyUnknown // an IAMUser with no usable ARN
		}
		if id.Name == "" {
			id.Name = u.UserName
		}
	case "FederatedUser":
		federated(&id, issuer)
	default:
		// AssumedRole, Role, SAMLUser, WebIdentityUser and anything else that carries a role
		// session: the sessionIssuer names the role with its path.
		if issuer != nil && issuer.ARN != "" {
			fromARN(&id, issuer.ARN)
			if id.Kind != "" {
				if id.Name == "" {
					id.Name = issuer.UserName
				}
				break
			}
		}
		fromARN(&id, u.ARN)
		if id.Kind == "" {
			unnamed(&id, u)
		}
	}
	if id.Account == "" {
		if a, err := arn.Parse(id.SessionARN); err == nil {
			id.Account = a.AccountID
		}
	}
	return id
}

// fromARN classifies the principal named by an IAM or STS ARN. It leaves id.Kind empty when
// the ARN is not one it knows.
func fromARN(id *Identity, s string) {
	if !strings.HasPrefix(s, "arn:") {
		return
	}
	a, err := arn.Parse(s)
	if err != nil {
		return
	}
	if id.Account == "" {
		id.Account = a.AccountID
	}
	switch {
	case a.Service == "iam" && a.Resource == "root":
		rootIdentity(id)
	case a.Service == "iam" && strings.HasPrefix(a.Resource, "user/"):
		id.Kind, id.PrincipalARN, id.Editable = KindUser, s, true
		id.Name = lastSegment(a.Resource)
	case a.Service == "iam" && strings.HasPrefix(a.Resource, "role/"):
		roleIdentity(id, s, a.Resource, false)
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "assumed-role/"):
		// arn:P:sts::A:assumed-role/NAME/SESSION: the role's path is not in a session ARN.
		name, _, _ := strings.Cut(strings.TrimPrefix(a.Resource, "assumed-role/"), "/")
		if name == "" {
			return
		}
		role := "arn:" + a.Partition + ":iam::" + a.AccountID + ":role/" + name
		roleIdentity(id, role, "role/"+name, true)
	case a.Service == "sts" && strings.HasPrefix(a.Resource, "federated-user/"):
		federated(id, nil)
	}
}

// roleIdentity sets a role principal; resource is "role/PATH/NAME".
func roleIdentity(id *Identity, roleARN, resource string, pathUnknown bool) {
	id.Kind, id.PrincipalARN, id.Editable = KindRole, roleARN, true
	id.Name = lastSegment(resource)
	id.PathUnknown = pathUnknown
	if pathUnknown {
		id.Note = notePath
	}
	path := strings.TrimPrefix(resource, "role/")
	switch {
	case strings.HasPrefix(path, "aws-reserved/sso.amazonaws.com/"), strings.HasPrefix(id.Name, "AWSReservedSSO_"):
		id.Kind, id.Editable, id.NotEditable = KindSSORole, false, whySSO
	case strings.HasPrefix(path, "aws-service-role/"), pathUnknown && strings.HasPrefix(id.Name, "AWSServiceRoleFor"):
		id.Kind, id.Editable, id.NotEditable = KindServiceLinkedRole, false, whySLR
	}
}

func rootIdentity(id *Identity) {
	id.Kind, id.PrincipalARN, id.Editable, id.NotEditable = KindRoot, "", false, whyRoot
	id.Name = ""
}

// federated handles a GetFederationToken session: the sessionIssuer is the IAM user (or the
// root user) that federated; the session policy given to GetFederationToken also applies.
func federated(id *Identity, issuer *sessionIssuer) {
	id.Kind, id.Note = KindFederatedUser, noteFederated
	if issuer == nil || issuer.ARN == "" {
		id.Editable, id.NotEditable = false, whyNoIssuer
		return
	}
	var u Identity
	fromARN(&u, issuer.ARN)
	switch u.Kind {
	case KindUser:
		id.PrincipalARN, id.Name, id.Editable, id.NotEditable = u.PrincipalARN, u.Name, true, ""
	case KindRoot:
		id.Editable, id.NotEditable = false, whyRoot
	default:
		id.Editable, id.NotEditable = false, whyNoIssuer
	}
	if id.Account == "" {
		id.Account = u.Account
	}
}

// unnamed handles an identity with no ARN we can use: anonymous or unknown.
func unnamed(id *Identity, u *userIdentity) {
	if isAnonymous(u) {
		id.Kind, id.NotEditable = KindAnonymous, whyAnonymous
		return
	}
	id.Kind, id.NotEditable = KindUnknown, whyUnknown
}

func isAnonymous(u *userIdentity) bool {
	return u.Type == "AnonymousUser" || strings.EqualFold(u.PrincipalID, "anonymous") ||
		u.AccountID == "ANONYMOUS_PRINCIPAL" || strings.EqualFold(u.ARN, "anonymous")
}

func lastSegment(s string) string {
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		return s[i+1:]
	}
	return s
}
