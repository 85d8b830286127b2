package store

// SetRulesChannelForTest makes r publish its changes on another channel,
// so that a test can show Watch noticing a change without pub/sub.
func SetRulesChannelForTest(r *Rules, channel string) { r.channel = channel }
