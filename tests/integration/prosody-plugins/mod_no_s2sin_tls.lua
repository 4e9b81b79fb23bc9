-- mod_no_s2sin_tls: for t17. Makes Prosody look like a server without TLS on its inbound s2s:
-- no <starttls/> in the s2s stream features, and <failure/> (RFC 6120 §5.4.2.2) to a
-- <starttls/> sent anyway. Its outbound s2s keeps mod_tls (certificate, STARTTLS, SASL
-- EXTERNAL), so its dialback callbacks can reach a server that takes TLS only.
local st = require "util.stanza";

module:hook("s2s-stream-features", function(event)
	event.features:maptags(function(tag)
		if tag.name == "starttls" then return nil; end
		return tag;
	end);
end, -1000); -- after mod_tls added it

module:hook("stanza/urn:ietf:params:xml:ns:xmpp-tls:starttls", function(event)
	local origin = event.origin;
	if origin.type ~= "s2sin_unauthed" then return; end
	module:log("info", "refusing STARTTLS on inbound s2s");
	origin.sends2s(st.stanza("failure", { xmlns = "urn:ietf:params:xml:ns:xmpp-tls" }));
	origin:close();
	return true;
end, 1000); -- before mod_tls
