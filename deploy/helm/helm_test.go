// Package helm tests the Helm chart in warden/ and the plain manifests in
// ../kubernetes: helm's own lint, rendering with values variants (through
// values.schema.json), a strict decode of every document into the typed
// Kubernetes API objects, the promises of a replicated deployment, and
// wardend's own loader on the rendered configuration.
package helm

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/releaseutil"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"
	dynamicfake "k8s.io/client-go/dynamic/fake"

	yaml "go.yaml.in/yaml/v3"

	"github.com/wardenidp/warden/internal/config"
)

const (
	chartDir     = "warden"
	manifestPath = "../kubernetes/warden.yaml"
	release      = "warden"
	namespace    = "idp"
)

// kubeVersion is the oldest the chart supports (Chart.yaml kubeVersion):
// lifecycle.preStop.sleep is on by default from 1.30.
var kubeVersion = &chartutil.KubeVersion{Version: "v1.30.0", Major: "1", Minor: "30"}

// required are the values without which the chart refuses to render.
func required() map[string]any {
	return map[string]any{
		"server": map[string]any{"publicURL": "https://sso.example.com"},
		"directory": map[string]any{
			"urls":         []any{"ldaps://ldap1.example.com", "ldaps://ldap2.example.com"},
			"baseDN":       "dc=example,dc=org",
			"bindDN":       "cn=svc-idp,ou=people,dc=example,dc=org",
			"bindPassword": map[string]any{"existingSecret": "warden-ldap"},
		},
	}
}

// with returns required() with the given values merged over it (maps
// merged key by key, anything else replaced).
func with(over map[string]any) map[string]any {
	return chartutil.CoalesceTables(deepCopy(over), required())
}

func deepCopy(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = deepCopy(sub)
		}
		out[k] = v
	}
	return out
}

// scheme knows exactly the kinds the chart and the manifest may contain,
// so that any other kind, or a typo in apiVersion, fails the decode.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, networkingv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictDecoder refuses unknown and duplicate fields; a field of the wrong
// type fails as in any decode.
var strictDecoder = serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()

func TestLint(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		bad  string // a lint error that must be reported; empty: none may be
	}{
		{"chart defaults", nil, ""}, // helm lint skips required and fail here
		{"required", required(), ""},
		{"values against the schema", with(map[string]any{"replicaCount": "three"}), "replicaCount"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// lint logs every required value it skips; its messages say enough
			log.SetOutput(io.Discard)
			t.Cleanup(func() { log.SetOutput(os.Stderr) })
			l := lint.AllWithKubeVersion(chartDir, tc.vals, namespace, kubeVersion)
			found := false
			for _, m := range l.Messages {
				switch {
				case tc.bad != "" && m.Severity == support.ErrorSev && strings.Contains(m.Error(), tc.bad):
					found = true
				case m.Severity >= support.WarningSev:
					t.Errorf("lint: %s", m)
				default:
					t.Logf("lint: %s", m)
				}
			}
			if tc.bad != "" && !found {
				t.Errorf("lint reported no error about %s", tc.bad)
			}
		})
	}
}

// renderOpts are the release and, optionally, a cluster for lookup.
type renderOpts struct {
	name      string
	upgrade   bool
	clientsFn engine.ClientProvider
}

// render renders the chart (values.schema.json checked first, as helm
// install does) and returns the manifests by template name, NOTES.txt
// included.
func render(vals map[string]any, o renderOpts) (map[string]string, error) {
	ch, err := loader.Load(chartDir)
	if err != nil {
		return nil, fmt.Errorf("load chart: %w", err)
	}
	if o.name == "" {
		o.name = release
	}
	caps := chartutil.DefaultCapabilities.Copy()
	caps.KubeVersion = *kubeVersion
	rv, err := chartutil.ToRenderValues(ch, vals, chartutil.ReleaseOptions{
		Name: o.name, Namespace: namespace, IsInstall: !o.upgrade, IsUpgrade: o.upgrade, Revision: 1,
	}, caps)
	if err != nil {
		return nil, fmt.Errorf("values: %w", err)
	}
	if o.clientsFn != nil {
		return engine.RenderWithClientProvider(ch, rv, o.clientsFn)
	}
	// Strict: a template reading a value that does not exist fails.
	return engine.Engine{Strict: true}.Render(ch, rv)
}

// decodeAll strictly decodes every YAML document of the rendered files
// (NOTES.txt aside) into its typed API object.
func decodeAll(files map[string]string) ([]runtime.Object, error) {
	var objs []runtime.Object
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(files)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		docs := releaseutil.SplitManifests(files[name])
		for _, key := range slices.Sorted(maps.Keys(docs)) {
			doc := docs[key]
			if isBlank(doc) {
				continue
			}
			obj, err := decode(doc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
				continue
			}
			objs = append(objs, obj)
		}
	}
	return objs, errors.Join(errs...)
}

// isBlank reports whether a document holds only comments and white space.
func isBlank(doc string) bool {
	for line := range strings.Lines(doc) {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func decode(doc string) (runtime.Object, error) {
	obj, gvk, err := strictDecoder.Decode([]byte(doc), nil, nil)
	if err != nil {
		what := "document"
		if gvk != nil {
			what = gvk.Kind
		}
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return obj, nil
}

// decodeManifest strictly decodes a multi-document YAML file.
func decodeManifest(data string) ([]runtime.Object, error) {
	return decodeAll(map[string]string{"manifest": data})
}

func mustRender(t *testing.T, vals map[string]any, o renderOpts) ([]runtime.Object, map[string]string) {
	t.Helper()
	files, err := render(vals, o)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	objs, err := decodeAll(files)
	if err != nil {
		t.Fatalf("strict decode of the rendered chart:\n%v", err)
	}
	return objs, files
}

// expect says what a variant must and must not contain.
type expect struct {
	ingress, tls, networkPolicy, internalRedis, pdb bool
	keyStore                                        string // redis or file
}

var full = expect{ingress: true, tls: true, networkPolicy: true, internalRedis: true, pdb: true, keyStore: "redis"}

func TestChartVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want expect
		// secrets the release expects to exist (made by the operator)
		external []string
		release  string
		// the Deployment's name
		deployment string
	}{
		{name: "defaults", vals: required(), want: full, external: []string{"warden-ldap"}, deployment: "warden"},
		{
			name: "external redis, keys from a Secret, metrics on",
			vals: with(map[string]any{
				"redis": map[string]any{
					"enabled":  false,
					"auth":     map[string]any{"existingSecret": "elasticache-auth", "key": "auth"},
					"external": map[string]any{"addrs": []any{"redis.internal:6380"}},
				},
				"keys":    map[string]any{"encryptionKey": map[string]any{"existingSecret": "warden-keys-ext"}},
				"metrics": map[string]any{"enabled": true, "bearerToken": map[string]any{"existingSecret": "warden-metrics"}, "from": []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}}}}},
				"config":  map[string]any{"redis": map[string]any{"tls": map[string]any{"enabled": true}}, "session": map[string]any{"max_per_user": 20}},
			}),
			want:       expect{ingress: true, tls: true, networkPolicy: true, pdb: true, keyStore: "redis"},
			external:   []string{"warden-ldap", "elasticache-auth", "warden-keys-ext", "warden-metrics"},
			deployment: "warden",
		},
		{
			name: "keyring Secret, no ingress, no network policy, minAvailable",
			vals: with(map[string]any{
				"keys":                map[string]any{"store": "file", "fileSecret": "warden-keyring"},
				"ingress":             map[string]any{"enabled": false},
				"networkPolicy":       map[string]any{"enabled": false},
				"podDisruptionBudget": map[string]any{"minAvailable": 2},
				"redis":               map[string]any{"persistence": map[string]any{"enabled": false}},
			}),
			want:       expect{internalRedis: true, pdb: true, keyStore: "file"},
			external:   []string{"warden-ldap", "warden-keyring"},
			deployment: "warden",
		},
		{
			name: "ingress without TLS, other release name",
			vals: with(map[string]any{
				"ingress": map[string]any{"className": "traefik", "host": "login.example.com", "tls": map[string]any{"enabled": false}},
			}),
			want:       expect{ingress: true, networkPolicy: true, internalRedis: true, pdb: true, keyStore: "redis"},
			external:   []string{"warden-ldap"},
			release:    "sso",
			deployment: "sso-warden",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, _ := mustRender(t, tc.vals, renderOpts{name: tc.release})
			if !slices.ContainsFunc(objs, func(o runtime.Object) bool {
				d, ok := o.(*appsv1.Deployment)
				return ok && d.Name == tc.deployment
			}) {
				t.Errorf("no Deployment %s", tc.deployment)
			}
			for _, p := range checkHA(objs, tc.want) {
				t.Error(p)
			}
			for _, p := range checkRefs(objs, tc.external) {
				t.Error(p)
			}
			checkConfig(t, objs, tc.want.keyStore)
		})
	}
}

func TestManifest(t *testing.T) {
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := decodeManifest(string(data))
	if err != nil {
		t.Fatalf("strict decode of %s:\n%v", manifestPath, err)
	}
	for _, p := range checkHA(objs, full) {
		t.Error(p)
	}
	for _, p := range checkRefs(objs, []string{"warden-ldap", "warden-redis", "warden-keys", "warden-tls"}) {
		t.Error(p)
	}
	checkConfig(t, objs, "redis")
}

// TestStrictDecodeRefuses makes sure the decode above can fail: a
// misspelled field, a field of the wrong type, an unknown kind.
func TestStrictDecodeRefuses(t *testing.T) {
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"misspelled field", "  replicas: 3\n", "  replica: 3\n", `unknown field "spec.replica"`},
		{"misspelled nested field", "preStop: {sleep: {seconds: 5}}", "preStop: {sleep: {second: 5}}", `unknown field "spec.template.spec.containers[0].lifecycle.preStop.sleep.second"`},
		{"wrong type", "  replicas: 3\n", "  replicas: three\n", "replicas"},
		{"duplicate field", "  replicas: 3\n", "  replicas: 3\n  replicas: 2\n", "replicas"},
		{"unknown kind", "kind: PodDisruptionBudget", "kind: PodDisruptionBugdet", "PodDisruptionBugdet"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.Count(string(data), tc.old) == 0 {
				t.Fatalf("%q not in %s", tc.old, manifestPath)
			}
			bad := strings.Replace(string(data), tc.old, tc.new, 1)
			_, err := decodeManifest(bad)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("decode = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestCheckHARefuses makes sure the promise checks can fail: the
// single-replica manifest this chart replaced breaks most of them.
func TestCheckHARefuses(t *testing.T) {
	data, err := os.ReadFile(manifestPath)
	if err != nil {
		t.Fatal(err)
	}
	old := string(data)
	for _, r := range [][2]string{
		{"  replicas: 3\n", "  replicas: 1\n"},
		{"    type: RollingUpdate\n    # one new pod at a time, and never fewer than three ready\n    rollingUpdate: {maxUnavailable: 0, maxSurge: 1}\n", "    type: Recreate\n"},
		{"preStop: {sleep: {seconds: 5}}", "preStop: {sleep: {seconds: 50}}"},
		{"limits: {cpu: \"1\", memory: 256Mi}", "limits: {cpu: \"1\"}"},
		{"        - {name: data, emptyDir: {sizeLimit: 64Mi}}", "        - {name: data, persistentVolumeClaim: {claimName: wardend-data}}"},
		{"            - {name: keys, mountPath: /run/secrets/warden-keys, readOnly: true}\n", ""},
		{"items: [{key: password, path: password}]", "items: [{key: password, path: redis_password}]"},
	} {
		if !strings.Contains(old, r[0]) {
			t.Fatalf("%q not in %s", r[0], manifestPath)
		}
		old = strings.Replace(old, r[0], r[1], 1)
	}
	objs, err := decodeManifest(old)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(checkHA(objs, full), "\n")
	for _, want := range []string{"replicas 1", "strategy Recreate", "terminationGracePeriodSeconds", "memory limit", "PersistentVolumeClaim",
		"keys.encryption_key_file /run/secrets/warden-keys/encryption_key is not mounted",
		"redis.password_file /run/secrets/warden-redis/password is not mounted"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems do not mention %q:\n%s", want, got)
		}
	}
}

func TestValuesRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		// values.schema.json
		{"replicas not a number", with(map[string]any{"replicaCount": "three"}), "replicaCount"},
		{"unknown key store", with(map[string]any{"keys": map[string]any{"store": "disk"}}), "store"},
		{"misspelled top-level key", with(map[string]any{"replicas": 3}), "replicas"},
		{"public URL with a path", with(map[string]any{"server": map[string]any{"publicURL": "https://sso.example.com/warden"}}), "publicURL"},
		{"ldap URL", with(map[string]any{"directory": map[string]any{"urls": []any{"ldap.example.com"}}}), "urls"},
		// the templates' own checks
		{"no public URL", nil, "server.publicURL is required"},
		{"no bind password Secret", with(map[string]any{"directory": map[string]any{"bindPassword": map[string]any{"existingSecret": ""}}}), "directory.bindPassword.existingSecret is required"},
		{"external redis without addresses", with(map[string]any{"redis": map[string]any{"enabled": false}}), "redis.external.addrs is required"},
		{"file store without Secret", with(map[string]any{"keys": map[string]any{"store": "file"}}), "keys.fileSecret is required"},
		{"grace period too short", with(map[string]any{"shutdown": map[string]any{"terminationGracePeriodSeconds": 20}}), "must be more than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := render(tc.vals, renderOpts{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("render = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// TestNotes: what helm install prints names the URL and the key Secret.
func TestNotes(t *testing.T) {
	files, err := render(required(), renderOpts{})
	if err != nil {
		t.Fatal(err)
	}
	notes := files["warden/templates/NOTES.txt"]
	t.Logf("NOTES.txt:\n%s", notes)
	for _, want := range []string{
		"https://sso.example.com/saml/metadata",
		"kubectl -n idp get secret warden-keys -o jsonpath='{.data.encryption_key}' | base64 -d",
		"rollout status deployment/warden",
		"networkPolicy.ingressFrom",
	} {
		if !strings.Contains(notes, want) {
			t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
		}
	}
}

// TestGeneratedSecretsKept: the Redis password and the key encryption key
// are made once and found again by lookup on an upgrade.
func TestGeneratedSecretsKept(t *testing.T) {
	secrets := func(files map[string]string) map[string]*corev1.Secret {
		t.Helper()
		objs, err := decodeAll(files)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*corev1.Secret{}
		for _, o := range objs {
			if s, ok := o.(*corev1.Secret); ok {
				out[s.Name] = s
			}
		}
		return out
	}
	first, err := render(required(), renderOpts{})
	if err != nil {
		t.Fatal(err)
	}
	second, err := render(required(), renderOpts{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := secrets(first), secrets(second)
	if len(a) != 2 || a["warden-redis"] == nil || a["warden-keys"] == nil {
		t.Fatalf("generated secrets = %v, want warden-redis and warden-keys", slices.Sorted(maps.Keys(a)))
	}
	if string(a["warden-redis"].Data["password"]) == string(b["warden-redis"].Data["password"]) {
		t.Error("two installs got the same Redis password: not random")
	}
	if len(a["warden-redis"].Data["password"]) < 32 {
		t.Errorf("Redis password has %d characters, want at least 32", len(a["warden-redis"].Data["password"]))
	}
	key, err := base64.StdEncoding.DecodeString(string(a["warden-keys"].Data["encryption_key"]))
	if err != nil || len(key) != 32 {
		t.Errorf("encryption key file = %d bytes (%v), want the base64 of 32 bytes", len(key), err)
	}
	if a["warden-keys"].Annotations["helm.sh/resource-policy"] != "keep" {
		t.Error("the encryption key Secret lacks helm.sh/resource-policy: keep; helm uninstall would lose it")
	}

	// An upgrade against a cluster that has both: the same values come back.
	a["warden-redis"].Namespace, a["warden-keys"].Namespace = namespace, namespace
	cluster := dynamicfake.NewSimpleDynamicClient(scheme, a["warden-redis"], a["warden-keys"])
	if _, err := cluster.Resource(corev1.SchemeGroupVersion.WithResource("secrets")).Namespace(namespace).Get(context.Background(), "warden-keys", metav1.GetOptions{}); err != nil {
		t.Fatalf("fake cluster: %v", err)
	}
	up, err := render(required(), renderOpts{upgrade: true, clientsFn: fakeClients{cluster}})
	if err != nil {
		t.Fatal(err)
	}
	c := secrets(up)
	for name, key := range map[string]string{"warden-redis": "password", "warden-keys": "encryption_key"} {
		if got, want := string(c[name].Data[key]), string(a[name].Data[key]); got != want {
			t.Errorf("upgrade changed %s/%s", name, key)
		}
	}
}

// fakeClients serves lookup from a fake cluster.
type fakeClients struct{ c dynamic.Interface }

func (f fakeClients) GetClientFor(apiVersion, kind string) (dynamic.NamespaceableResourceInterface, bool, error) {
	if apiVersion != "v1" || kind != "Secret" {
		return nil, false, fmt.Errorf("fake cluster: no %s %s", apiVersion, kind)
	}
	return f.c.Resource(schema.GroupVersionResource{Version: "v1", Resource: "secrets"}), true, nil
}

// checkHA returns what the objects break of the promises of a replicated
// Warden (empty when all is well).
func checkHA(objs []runtime.Object, want expect) []string {
	var ps []string
	bad := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	var deps []*appsv1.Deployment
	var pdbs []*policyv1.PodDisruptionBudget
	var netpols []*networkingv1.NetworkPolicy
	var ingresses []*networkingv1.Ingress
	var redis []*appsv1.StatefulSet
	for _, o := range objs {
		switch o := o.(type) {
		case *appsv1.Deployment:
			deps = append(deps, o)
		case *policyv1.PodDisruptionBudget:
			pdbs = append(pdbs, o)
		case *networkingv1.NetworkPolicy:
			netpols = append(netpols, o)
		case *networkingv1.Ingress:
			ingresses = append(ingresses, o)
		case *appsv1.StatefulSet:
			redis = append(redis, o)
		case *corev1.PersistentVolumeClaim:
			bad("a PersistentVolumeClaim %s: wardend keeps nothing on disk", o.Name)
		}
	}
	if len(deps) != 1 {
		return append(ps, fmt.Sprintf("%d Deployments, want 1 (wardend)", len(deps)))
	}
	d := deps[0]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 3 {
		bad("replicas %d, want at least 3", ptrOr(d.Spec.Replicas, 1))
	}
	if d.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType {
		bad("strategy %s, want RollingUpdate", d.Spec.Strategy.Type)
	} else if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxSurge == nil || ru.MaxSurge.IntValue() != 1 || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() > 1 {
		bad("rollingUpdate %+v, want maxSurge 1 and maxUnavailable 0 or 1", ru)
	}
	pod := d.Spec.Template.Spec
	podLabels := labels.Set(d.Spec.Template.Labels)
	if sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector); err != nil || !sel.Matches(podLabels) {
		bad("the Deployment's selector does not match its pods (%v)", err)
	}
	keys := map[string]bool{}
	for _, c := range pod.TopologySpreadConstraints {
		sel, err := metav1.LabelSelectorAsSelector(c.LabelSelector)
		if err != nil || !sel.Matches(podLabels) {
			bad("topology spread on %s does not select wardend's pods", c.TopologyKey)
		}
		keys[c.TopologyKey] = true
	}
	if !keys["topology.kubernetes.io/zone"] || !keys["kubernetes.io/hostname"] {
		bad("topologySpreadConstraints on %v, want zone and hostname", slices.Sorted(maps.Keys(keys)))
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		bad("the service account token is mounted; wardend needs no Kubernetes API")
	}
	if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil {
		bad("pod securityContext lacks runAsNonRoot and seccompProfile")
	}
	for _, v := range pod.Volumes {
		if v.PersistentVolumeClaim != nil {
			bad("volume %s is a PersistentVolumeClaim: replicas share no disk", v.Name)
		}
	}
	if len(pod.Containers) != 1 {
		return append(ps, fmt.Sprintf("%d containers, want 1", len(pod.Containers)))
	}
	c := pod.Containers[0]
	probe := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path {
			bad("%s probe is not GET %s", name, path)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		bad("no cpu and memory requests")
	}
	if c.Resources.Limits.Memory().IsZero() {
		bad("no memory limit")
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		bad("container securityContext is not read-only root, no privilege escalation, all capabilities dropped")
	}
	var preStop int64
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		bad("no preStop sleep hook")
	} else {
		preStop = c.Lifecycle.PreStop.Sleep.Seconds
		if c.Lifecycle.PreStop.Exec != nil {
			bad("preStop runs a command; the distroless image has none")
		}
	}
	// The kubelet's grace period covers the hook, the drain and the shutdown.
	cfg, err := wardendConfig(objs)
	if err != nil {
		bad("%v", err)
	} else {
		// Every file the configuration names is mounted, the file itself too.
		if i := slices.Index(c.Args, "-config"); i < 0 || i+1 >= len(c.Args) {
			bad("wardend's args %v name no -config file", c.Args)
		} else if !mounted(pod, c, c.Args[i+1]) {
			bad("-config %s is not mounted", c.Args[i+1])
		}
		eachFile(cfg, "", func(key, path string) {
			if !mounted(pod, c, path) {
				bad("%s %s is not mounted", key, path)
			}
		})
		if dir, ok := lookup(cfg, "keys.dir"); ok && !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
			return m.MountPath == dir && m.ReadOnly
		}) {
			bad("keys.dir %v is not a read-only mount", dir)
		}
		server, _ := cfg["server"].(map[string]any)
		drain := seconds(server["drain_delay"])
		shutdown := seconds(server["shutdown_timeout"])
		if drain <= 0 {
			bad("server.drain_delay %v, want a positive duration", server["drain_delay"])
		}
		if shutdown <= 0 {
			bad("server.shutdown_timeout %v, want it said (the grace period is computed from it)", server["shutdown_timeout"])
		}
		if g := ptrOr(pod.TerminationGracePeriodSeconds, 30); g <= preStop+drain+shutdown {
			bad("terminationGracePeriodSeconds %d, want more than preStop %d + drain_delay %d + shutdown_timeout %d", g, preStop, drain, shutdown)
		}
	}

	if want.pdb {
		if len(pdbs) != 1 {
			bad("%d PodDisruptionBudgets, want 1", len(pdbs))
		} else {
			p := pdbs[0]
			if sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector); err != nil || !sel.Matches(podLabels) {
				bad("the PodDisruptionBudget does not select wardend's pods")
			}
			switch {
			case p.Spec.MinAvailable != nil && p.Spec.MaxUnavailable != nil:
				bad("the PodDisruptionBudget sets both minAvailable and maxUnavailable")
			case p.Spec.MinAvailable != nil && p.Spec.MinAvailable.IntValue() >= int(ptrOr(d.Spec.Replicas, 1)):
				bad("minAvailable %d blocks every drain at %d replicas", p.Spec.MinAvailable.IntValue(), ptrOr(d.Spec.Replicas, 1))
			case p.Spec.MaxUnavailable != nil && p.Spec.MaxUnavailable.IntValue() < 1:
				bad("maxUnavailable %s blocks every drain", p.Spec.MaxUnavailable.String())
			case p.Spec.MinAvailable == nil && p.Spec.MaxUnavailable == nil:
				bad("the PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
			}
		}
	}

	if want.ingress != (len(ingresses) == 1) {
		bad("%d Ingresses, want ingress %v", len(ingresses), want.ingress)
	}
	for _, ing := range ingresses {
		hosts := map[string]bool{}
		for _, r := range ing.Spec.Rules {
			hosts[r.Host] = true
			if r.Host == "" {
				bad("an Ingress rule without a host")
			}
		}
		var tlsHosts []string
		for _, tls := range ing.Spec.TLS {
			tlsHosts = append(tlsHosts, tls.Hosts...)
			if tls.SecretName == "" {
				bad("Ingress TLS without a secretName")
			}
		}
		if want.tls {
			for h := range hosts {
				if !slices.Contains(tlsHosts, h) {
					bad("Ingress host %s has no TLS", h)
				}
			}
		} else if len(tlsHosts) > 0 {
			bad("Ingress TLS although off")
		}
	}

	if want.internalRedis != (len(redis) == 1) {
		bad("%d Redis StatefulSets, want internal Redis %v", len(redis), want.internalRedis)
	}
	for _, r := range redis {
		ps = append(ps, checkRedis(r)...)
	}

	if want.networkPolicy {
		ps = append(ps, checkNetworkPolicies(netpols, podLabels, redis)...)
	} else if len(netpols) > 0 {
		bad("%d NetworkPolicies although off", len(netpols))
	}
	return ps
}

func checkRedis(r *appsv1.StatefulSet) []string {
	var ps []string
	bad := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	if len(r.Spec.Template.Spec.Containers) != 1 {
		return []string{"the Redis StatefulSet wants one container"}
	}
	c := r.Spec.Template.Spec.Containers[0]
	if !strings.HasPrefix(c.Image, "redis:7") {
		bad("Redis image %s, want redis:7", c.Image)
	}
	args := strings.Join(c.Args, " ")
	if !strings.Contains(args, "--appendonly yes") {
		bad("Redis without AOF (--appendonly yes): %s", args)
	}
	if !strings.Contains(args, "--requirepass $(REDIS_PASSWORD)") {
		bad("Redis without --requirepass $(REDIS_PASSWORD): %s", args)
	}
	found := false
	for _, e := range c.Env {
		if e.Name == "REDIS_PASSWORD" {
			found = e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.Value == ""
		}
	}
	if !found {
		bad("REDIS_PASSWORD does not come from a Secret")
	}
	if c.Resources.Limits.Memory().IsZero() {
		bad("Redis has no memory limit")
	}
	return ps
}

func checkNetworkPolicies(nps []*networkingv1.NetworkPolicy, wardend labels.Set, redis []*appsv1.StatefulSet) []string {
	var ps []string
	bad := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	var own *networkingv1.NetworkPolicy
	var redisPol *networkingv1.NetworkPolicy
	for _, np := range nps {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			bad("NetworkPolicy %s: %v", np.Name, err)
			continue
		}
		if sel.Matches(wardend) {
			own = np
		}
		for _, r := range redis {
			if sel.Matches(labels.Set(r.Spec.Template.Labels)) {
				redisPol = np
			}
		}
	}
	if own == nil {
		return append(ps, "no NetworkPolicy selects wardend's pods")
	}
	if !slices.Contains(own.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(own.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
		bad("wardend's NetworkPolicy does not cover both Ingress and Egress")
	}
	for _, r := range own.Spec.Ingress {
		for _, p := range r.Ports {
			if p.Port == nil || p.Port.IntValue() != 8080 {
				bad("wardend's NetworkPolicy lets in a port other than 8080")
			}
		}
		for _, f := range r.From {
			if f.IPBlock != nil || (f.NamespaceSelector != nil && len(f.NamespaceSelector.MatchLabels) == 0 && len(f.NamespaceSelector.MatchExpressions) == 0) {
				bad("wardend's NetworkPolicy lets in from anywhere or from every namespace")
			}
		}
	}
	if len(own.Spec.Ingress) == 0 {
		bad("wardend's NetworkPolicy lets no one in (not even the ingress controller)")
	}
	ports := map[int]bool{}
	for _, r := range own.Spec.Egress {
		for _, p := range r.Ports {
			if p.Port != nil {
				ports[p.Port.IntValue()] = true
			}
		}
		if len(r.Ports) == 0 {
			bad("wardend's NetworkPolicy allows egress to any port")
		}
	}
	for _, p := range []int{389, 636, 443, 53} {
		if !ports[p] {
			bad("wardend's NetworkPolicy lets no traffic out to port %d", p)
		}
	}
	if len(redis) > 0 {
		if !ports[6379] {
			bad("wardend's NetworkPolicy does not let it reach Redis on 6379")
		}
		if redisPol == nil {
			bad("no NetworkPolicy selects Redis")
		} else {
			if len(redisPol.Spec.Egress) != 0 || !slices.Contains(redisPol.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
				bad("Redis may open connections")
			}
			for _, r := range redisPol.Spec.Ingress {
				for _, f := range r.From {
					sel, err := metav1.LabelSelectorAsSelector(f.PodSelector)
					if f.PodSelector == nil || f.NamespaceSelector != nil || f.IPBlock != nil || err != nil || !sel.Matches(wardend) {
						bad("Redis lets in someone other than wardend")
					}
				}
				for _, p := range r.Ports {
					if p.Port == nil || p.Port.IntValue() != 6379 {
						bad("Redis lets in a port other than 6379")
					}
				}
			}
		}
	}
	return ps
}

// checkRefs checks names and references: every name and label valid,
// selectors of Services matching pods, the Ingress's backend a Service
// port, every mounted volume defined, every Secret referred to either
// rendered or in external (made by the operator).
func checkRefs(objs []runtime.Object, external []string) []string {
	var ps []string
	bad := func(format string, args ...any) { ps = append(ps, fmt.Sprintf(format, args...)) }
	secrets := map[string]bool{}
	for _, s := range external {
		secrets[s] = true
	}
	configMaps := map[string]bool{}
	services := map[string]*corev1.Service{}
	var pods []corev1.PodTemplateSpec
	for _, o := range objs {
		m, err := metaOf(o)
		if err != nil {
			bad("%v", err)
			continue
		}
		for _, e := range validation.IsDNS1123Subdomain(m.GetName()) {
			bad("name %q: %s", m.GetName(), e)
		}
		for k, v := range m.GetLabels() {
			for _, e := range append(validation.IsQualifiedName(k), validation.IsValidLabelValue(v)...) {
				bad("%s label %s=%s: %s", m.GetName(), k, v, e)
			}
		}
		switch o := o.(type) {
		case *corev1.Secret:
			secrets[o.Name] = true
		case *corev1.ConfigMap:
			configMaps[o.Name] = true
		case *corev1.Service:
			services[o.Name] = o
		case *appsv1.Deployment:
			pods = append(pods, o.Spec.Template)
		case *appsv1.StatefulSet:
			pt := *o.Spec.Template.DeepCopy()
			for _, pvc := range o.Spec.VolumeClaimTemplates {
				pt.Spec.Volumes = append(pt.Spec.Volumes, corev1.Volume{Name: pvc.Name})
			}
			pods = append(pods, pt)
			if _, ok := services[o.Spec.ServiceName]; !ok && !hasService(objs, o.Spec.ServiceName) {
				bad("StatefulSet %s: no Service %s", o.Name, o.Spec.ServiceName)
			}
		}
	}
	for _, pt := range pods {
		vols := map[string]bool{}
		for _, v := range pt.Spec.Volumes {
			vols[v.Name] = true
			if v.Secret != nil && !secrets[v.Secret.SecretName] {
				bad("volume %s: Secret %s is neither rendered nor expected", v.Name, v.Secret.SecretName)
			}
			if v.ConfigMap != nil && !configMaps[v.ConfigMap.Name] {
				bad("volume %s: no ConfigMap %s", v.Name, v.ConfigMap.Name)
			}
		}
		for _, c := range pt.Spec.Containers {
			for _, vm := range c.VolumeMounts {
				if !vols[vm.Name] {
					bad("container %s mounts undefined volume %s", c.Name, vm.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && !secrets[e.ValueFrom.SecretKeyRef.Name] {
					bad("env %s: Secret %s is neither rendered nor expected", e.Name, e.ValueFrom.SecretKeyRef.Name)
				}
			}
		}
	}
	for _, s := range services {
		matched := false
		for _, pt := range pods {
			if labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(pt.Labels)) {
				matched = true
				for _, p := range s.Spec.Ports {
					if !hasPort(pt, p.TargetPort.String()) {
						bad("Service %s: target port %s not on its pods", s.Name, p.TargetPort.String())
					}
				}
			}
		}
		if !matched || len(s.Spec.Selector) == 0 {
			bad("Service %s selects no pods", s.Name)
		}
	}
	for _, o := range objs {
		ing, ok := o.(*networkingv1.Ingress)
		if !ok {
			continue
		}
		for _, r := range ing.Spec.Rules {
			for _, p := range r.HTTP.Paths {
				svc := services[p.Backend.Service.Name]
				if svc == nil {
					bad("Ingress backend %s: no such Service", p.Backend.Service.Name)
					continue
				}
				if !slices.ContainsFunc(svc.Spec.Ports, func(sp corev1.ServicePort) bool {
					return sp.Name == p.Backend.Service.Port.Name || (sp.Port == p.Backend.Service.Port.Number && sp.Port != 0)
				}) {
					bad("Ingress backend port %+v not on Service %s", p.Backend.Service.Port, svc.Name)
				}
			}
		}
	}
	return ps
}

func hasService(objs []runtime.Object, name string) bool {
	return slices.ContainsFunc(objs, func(o runtime.Object) bool {
		s, ok := o.(*corev1.Service)
		return ok && s.Name == name
	})
}

func hasPort(pt corev1.PodTemplateSpec, port string) bool {
	for _, c := range pt.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == port || fmt.Sprint(p.ContainerPort) == port {
				return true
			}
		}
	}
	return false
}

func metaOf(o runtime.Object) (metav1.Object, error) {
	m, ok := o.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", o)
	}
	return m, nil
}

// wardendConfig returns the wardend.yaml of the single ConfigMap that has one.
func wardendConfig(objs []runtime.Object) (map[string]any, error) {
	var found []string
	for _, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok {
			if s, ok := cm.Data["wardend.yaml"]; ok {
				found = append(found, s)
			}
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%d ConfigMaps with wardend.yaml, want 1", len(found))
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(found[0]), &cfg); err != nil {
		return nil, fmt.Errorf("wardend.yaml: %w", err)
	}
	return cfg, nil
}

// checkConfig checks the rendered wardend.yaml: the keys promised to the
// operator, then wardend's own strict loader and validation.
func checkConfig(t *testing.T, objs []runtime.Object, keyStore string) {
	t.Helper()
	cfg, err := wardendConfig(objs)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"server.listen", "server.public_url", "server.drain_delay", "directory.type", "directory.urls",
		"directory.base_dn", "directory.bind_dn", "directory.bind_password_file", "redis.addrs", "keys.store", "admin.groups", "data_dir"} {
		if _, ok := lookup(cfg, k); !ok {
			t.Errorf("wardend.yaml lacks %s", k)
		}
	}
	if v, _ := lookup(cfg, "server.listen"); v != ":8080" {
		t.Errorf("server.listen = %v, want :8080 (the container port)", v)
	}
	if v, _ := lookup(cfg, "keys.store"); v != keyStore {
		t.Errorf("keys.store = %v, want %s", v, keyStore)
	}
	switch keyStore {
	case "redis":
		if v, _ := lookup(cfg, "keys.encryption_key_file"); v != "/run/secrets/warden-keys/encryption_key" {
			t.Errorf("keys.encryption_key_file = %v", v)
		}
	case "file":
		if v, _ := lookup(cfg, "keys.dir"); v != "/etc/warden/keys" {
			t.Errorf("keys.dir = %v", v)
		}
	}
	if v, _ := lookup(cfg, "server.debug.pprof"); v != false {
		t.Errorf("server.debug.pprof = %v, want false", v)
	}
	if err := wardendAccepts(cfg, t.TempDir()); err != nil {
		t.Error(err)
	}
}

// wardendAccepts runs wardend's strict loader and validation on cfg, every
// X_file replaced by a file in dir (the mounted paths do not exist here).
func wardendAccepts(cfg map[string]any, dir string) error {
	n := 0
	var werr error
	replaceFiles(cfg, "", func(key string) string {
		n++
		content := "s3cret-for-the-test-" + strings.Repeat("x", 20)
		if strings.HasSuffix(key, "encryption_key_file") {
			content = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
		}
		f := filepath.Join(dir, fmt.Sprintf("secret-%d", n))
		if err := os.WriteFile(f, []byte(content+"\n"), 0o600); err != nil {
			werr = err
		}
		return f
	})
	if werr != nil {
		return werr
	}
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	c, err := config.Parse(data, func(string) (string, bool) { return "", false })
	if err != nil {
		return fmt.Errorf("wardend refuses the rendered config:\n%w\n%s", err, data)
	}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("wardend's validation of the rendered config:\n%w\n%s", err, data)
	}
	return nil
}

// TestConfigRefused makes sure the configuration check can fail: values
// that the schema lets through (config is free-form) but wardend refuses.
func TestConfigRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		config map[string]any
		want   string
	}{
		{"unknown key", map[string]any{"server": map[string]any{"pprof": map[string]any{"enabled": true}}}, "server.pprof: unknown key"},
		{"bad value", map[string]any{"log": map[string]any{"level": "verbose"}}, "log.level: must be debug, info, warn or error"},
		{"two addresses, standalone", map[string]any{"redis": map[string]any{"addrs": []any{"a:6379", "b:6379"}}}, "redis.addrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, _ := mustRender(t, with(map[string]any{"config": tc.config}), renderOpts{})
			cfg, err := wardendConfig(objs)
			if err != nil {
				t.Fatal(err)
			}
			err = wardendAccepts(cfg, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("wardendAccepts = %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// mounted reports whether the file at path is in one of c's volume mounts:
// the mount itself (subPath), or a file in a mounted directory, which for
// a Secret or ConfigMap projected by items must be one of the items.
func mounted(pod corev1.PodSpec, c corev1.Container, path string) bool {
	for _, m := range c.VolumeMounts {
		var rel string
		switch {
		case m.MountPath == path && m.SubPath != "":
			rel = m.SubPath
		case strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") && m.SubPath == "":
			rel = strings.TrimPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		default:
			continue
		}
		i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 {
			return false
		}
		var items []corev1.KeyToPath
		switch v := pod.Volumes[i]; {
		case v.Secret != nil:
			items = v.Secret.Items
		case v.ConfigMap != nil:
			items = v.ConfigMap.Items
		default:
			return false // an emptyDir holds no configured file
		}
		return len(items) == 0 || slices.ContainsFunc(items, func(k corev1.KeyToPath) bool { return k.Path == rel })
	}
	return false
}

// eachFile calls fn with every X_file key of the configuration and its path.
func eachFile(m map[string]any, prefix string, fn func(key, path string)) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p := strings.TrimPrefix(prefix+"."+k, ".")
		switch v := m[k].(type) {
		case map[string]any:
			eachFile(v, p, fn)
		case string:
			if strings.HasSuffix(k, "_file") && v != "" {
				fn(p, v)
			}
		}
	}
}

// replaceFiles sets every X_file key to what repl returns for its path.
func replaceFiles(m map[string]any, prefix string, repl func(path string) string) {
	for k, v := range m {
		p := strings.TrimPrefix(prefix+"."+k, ".")
		switch v := v.(type) {
		case map[string]any:
			replaceFiles(v, p, repl)
		case string:
			if strings.HasSuffix(k, "_file") && v != "" {
				m[k] = repl(p)
			}
		}
	}
}

func lookup(m map[string]any, path string) (any, bool) {
	parts := strings.Split(path, ".")
	for i, p := range parts {
		v, ok := m[p]
		if !ok {
			return nil, false
		}
		if i == len(parts)-1 {
			return v, true
		}
		if m, ok = v.(map[string]any); !ok {
			return nil, false
		}
	}
	return nil, false
}

// seconds reads a YAML duration ("10s", "1m") as whole seconds; -1 when it is not one.
func seconds(v any) int64 {
	s, ok := v.(string)
	if !ok {
		return -1
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return -1
	}
	return int64(d.Seconds())
}

func ptrOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
