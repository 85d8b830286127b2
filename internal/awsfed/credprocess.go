package awsfed

import (
	"encoding/json"
	"time"
)

// CredentialProcessJSON renders c as the output of an AWS
// credential_process (item 45; botocore ProcessProvider and aws-sdk-go-v2
// processcreds): {"Version":1,"AccessKeyId","SecretAccessKey",
// "SessionToken","Expiration":RFC 3339 UTC} plus "AccountId" when known,
// followed by a newline.
func CredentialProcessJSON(c Credentials) []byte {
	out := struct {
		Version         int    `json:"Version"`
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		SessionToken    string `json:"SessionToken"`
		Expiration      string `json:"Expiration"`
		AccountID       string `json:"AccountId,omitempty"`
	}{1, c.AccessKeyID, c.SecretAccessKey, c.SessionToken, c.Expiration.UTC().Format(time.RFC3339), c.AccountID}
	b, _ := json.Marshal(out) // strings and an int: cannot fail
	return append(b, '\n')
}
