// Herald frames against XMPP stanzas and MQTT 3.1.1 packets carrying the same content: the
// notification a device gets when a message waits, a delivered message with a ~100 B and a
// ~1000 B JSON payload, and the heartbeat. Each case is benchmarked twice: Encode builds the bytes
// from plain fields, Decode parses them back to fields and checks every one. The counter `bytes`
// is what the packet costs on the wire, without TCP, TLS or WebSocket framing; for heartbeats,
// `answer_bytes` is the reply the peer sends back (0 when there is none).
//
// What is compared (docs/benchmarks.md, "Protocol: Herald frames against XMPP and MQTT"):
//
//   case       Herald                         XMPP (expat, namespace-aware)   MQTT 3.1.1
//   Notify     Notify{stream 0, head_seq 42}  pubsub event <message>, item 42  PUBLISH QoS 0 or 1
//                                                                              to d/phone-1/n,
//                                                                              payload "42"
//   Message    Messages{1 Entry: seq, app,    pubsub event <message>, item 42  PUBLISH QoS 1 to
//              message_id, JSON data, sent,   holding <push app sent expires>  d/phone-1/m/<app>,
//              expires}                       with the JSON as escaped text    payload = the JSON
//   Heartbeat  Ping (03 00)                   whitespace keepalive (1 byte);   PINGREQ (C0 00)
//                                             XEP-0199 ping <iq>
//
// XMPP is parsed the way servers (ejabberd, Prosody) and clients parse it: one streaming expat
// parser per connection, opened once with the <stream:stream> header, each stanza fed to it as it
// arrives and assembled from the start/end/character-data callbacks. XMPP is encoded with a small
// escaping writer (append_xml_text / append_xml_attr below), which escapes only what XML requires,
// so XMPP's byte counts are its best case.
//
// Usage: bench/herald_codec_compare_bench [--benchmark_filter=Notify] [--benchmark_min_time=0.01]

#include <expat.h>

#include <benchmark/benchmark.h>

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "protocol/frame_codec.h"

namespace herald::protocol {
namespace {

// ---- The content: the same for all three protocols ----

constexpr std::string_view kDeviceJid = "phone-1@push.example";  // XMPP addresses
constexpr std::string_view kServerJid = "push.example";
constexpr std::string_view kDeviceFullJid = "phone-1@push.example/mobile";
constexpr std::string_view kNotifyStanzaId = "5f3a9c1e";  // a short generated stanza id
constexpr std::string_view kInboxNode = "inbox";
constexpr std::uint64_t kSeq = 42;
constexpr std::uint64_t kEpoch = 1;
constexpr std::string_view kApp = "com.example.chat";
constexpr std::string_view kMessageId = "01HF8Z3K9Q2V7N4M6P8R0T2W4Y";
constexpr std::uint64_t kSentAtMs = 1'700'000'000'000;
constexpr std::uint64_t kExpiresAtMs = 1'700'604'800'000;
constexpr std::string_view kMqttNotifyTopic = "d/phone-1/n";
constexpr std::string_view kMqttMessageTopic = "d/phone-1/m/com.example.chat";
constexpr std::uint16_t kMqttPacketId = 42;

// A chat message of about 100 bytes, with characters XML must escape (& < >) and a quote.
std::string small_json() {
  return R"({"type":"chat","conv":"c-8841","from":"alice","text":"Lunch at 12:30? I'll bring <notes> & tea"})";
}

// An order update of about 1000 bytes: nested objects, numbers, strings needing XML escapes.
std::string large_json() {
  std::string j = R"({"type":"order_update","order":"o-5531","status":"shipped","items":[)";
  for (int i = 0; i < 12; ++i) {
    if (i > 0) j += ',';
    j += R"({"sku":"SKU-10)" + std::to_string(10 + i) + R"(","name":"Widget & Gadget <mk)" +
         std::to_string(i) + R"(>","qty":)" + std::to_string(i + 1) + R"(,"price":"12.50"})";
  }
  j += R"(],"note":"Leave it at the door, it's fine"})";
  return j;
}

std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

void append_uint(std::uint64_t v, std::string& out) {
  std::array<char, 20> buf;
  const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), v);
  out.append(buf.data(), r.ptr);
}

bool parse_uint(std::string_view s, std::uint64_t& v) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// ---- Herald ----

// The notify the server sends: the same fast path as AccessLoop (append_notify), decoded by
// parse_frame + protobuf as the client library does.
class HeraldNotify {
 public:
  void encode(std::string& out) const { append_notify(kInboxStream, kSeq, out); }
  bool decode(std::string_view in) const {
    const ParseResult r = parse_frame(as_bytes(in), kDefaultMaxBodyBytes);
    if (r.status != ParseStatus::kComplete || r.frame.type != FrameType::kNotify) return false;
    const auto n = decode_body<wire::Notify>(r.frame.body);
    return n && n->stream() == kInboxStream && n->head_seq() == kSeq;
  }
};

// A Messages frame with one entry, built from fields as Session does for a Pull.
class HeraldMessage {
 public:
  explicit HeraldMessage(std::string json) : json_(std::move(json)) {}
  void encode(std::string& out) const {
    wire::Messages m;
    m.set_stream(kInboxStream);
    m.set_epoch(kEpoch);
    m.set_head_seq(kSeq);
    wire::Entry* e = m.add_entries();
    e->set_seq(kSeq);
    e->set_app(std::string(kApp));
    e->set_message_id(std::string(kMessageId));
    e->set_data(json_);
    e->set_kind(wire::DATA_KIND_JSON);
    e->set_sent_at_ms(kSentAtMs);
    e->set_expires_at_ms(kExpiresAtMs);
    append_frame(FrameType::kMessages, m, out);
  }
  bool decode(std::string_view in) const {
    const ParseResult r = parse_frame(as_bytes(in), kDefaultMaxBodyBytes);
    if (r.status != ParseStatus::kComplete || r.frame.type != FrameType::kMessages) return false;
    const auto m = decode_body<wire::Messages>(r.frame.body);
    if (!m || m->stream() != kInboxStream || m->epoch() != kEpoch || m->head_seq() != kSeq ||
        m->entries_size() != 1) {
      return false;
    }
    const wire::Entry& e = m->entries(0);
    return e.seq() == kSeq && e.app() == kApp && e.message_id() == kMessageId &&
           e.data() == json_ && e.kind() == wire::DATA_KIND_JSON && e.sent_at_ms() == kSentAtMs &&
           e.expires_at_ms() == kExpiresAtMs;
  }

 private:
  std::string json_;
};

class HeraldPing {
 public:
  void encode(std::string& out) const { append_empty_frame(FrameType::kPing, out); }
  bool decode(std::string_view in) const {
    const ParseResult r = parse_frame(as_bytes(in), kDefaultMaxBodyBytes);
    if (r.status != ParseStatus::kComplete || r.frame.type != FrameType::kPing) return false;
    const auto p = decode_body<wire::Ping>(r.frame.body);
    return p && p->heartbeat_s() == 0;
  }
  std::size_t answer_bytes() const { return 2; }  // Pong: 04 00
};

// ---- XMPP ----

// Escaping writer. Character data: & < > (">" only matters in "]]>", escaped always, as libxml2
// and Prosody do). Attribute values, written in single quotes: & < ' and the whitespace that
// attribute normalisation would otherwise turn into spaces. Other C0 controls cannot appear in
// XML 1.0 at all: the writer refuses them (returns false) instead of producing a broken stanza.
// Double quotes are left as they are: Prosody's serialiser would also write &quot; (6 bytes for
// each quote of the JSON), so the byte counts here are XMPP's best case.
//
// What the writer does with each byte: 0 copy, 1 replace, 2 refuse. Bytes >= 0x80 (UTF-8) copy.
constexpr std::array<std::uint8_t, 256> byte_classes(bool attribute) {
  std::array<std::uint8_t, 256> t{};
  for (int c = 0; c < 0x20; ++c) t[c] = 2;
  t['&'] = t['<'] = 1;
  if (attribute) {
    t['\''] = t['\t'] = t['\n'] = t['\r'] = 1;
  } else {
    t['>'] = 1;
    t['\t'] = t['\n'] = t['\r'] = 0;
  }
  return t;
}
constexpr auto kTextClasses = byte_classes(false);
constexpr auto kAttrClasses = byte_classes(true);

std::string_view replacement(char c) {
  switch (c) {
    case '&':
      return "&amp;";
    case '<':
      return "&lt;";
    case '>':
      return "&gt;";
    case '\'':
      return "&apos;";
    case '\t':
      return "&#9;";
    case '\n':
      return "&#10;";
    default:
      return "&#13;";  // '\r'
  }
}

bool append_escaped(std::string_view s, const std::array<std::uint8_t, 256>& classes,
                    std::string& out) {
  std::size_t run = 0;  // start of the pending run of bytes copied as they are
  for (std::size_t i = 0; i < s.size(); ++i) {
    const std::uint8_t k = classes[static_cast<unsigned char>(s[i])];
    if (k == 0) continue;
    if (k == 2) return false;
    out.append(s.data() + run, i - run);
    out.append(replacement(s[i]));
    run = i + 1;
  }
  out.append(s.data() + run, s.size() - run);
  return true;
}

bool append_xml_text(std::string_view s, std::string& out) {
  return append_escaped(s, kTextClasses, out);
}

bool append_xml_attr(std::string_view name, std::string_view value, std::string& out) {
  out += ' ';
  out.append(name);
  out += "='";
  const bool ok = append_escaped(value, kAttrClasses, out);
  out += '\'';
  return ok;
}

void append_xml_attr(std::string_view name, std::uint64_t value, std::string& out) {
  out += ' ';
  out.append(name);
  out += "='";
  append_uint(value, out);
  out += '\'';
}

// Names as expat reports them with namespace processing: "namespace|local".
constexpr std::string_view kClientMessage = "jabber:client|message";
constexpr std::string_view kClientIq = "jabber:client|iq";
constexpr std::string_view kPubsubEvent = "http://jabber.org/protocol/pubsub#event|event";
constexpr std::string_view kPubsubItems = "http://jabber.org/protocol/pubsub#event|items";
constexpr std::string_view kPubsubItem = "http://jabber.org/protocol/pubsub#event|item";
constexpr std::string_view kHeraldPush = "urn:herald:push:0|push";
constexpr std::string_view kPing = "urn:xmpp:ping|ping";

// The fields of one stanza, as a receiver keeps them. Strings are reused from stanza to stanza.
struct Stanza {
  std::string name;  // "namespace|local" of the top-level element
  std::string to, from, id, type;
  std::string node, item_id;             // pubsub event
  std::string app, sent, expires, data;  // <push>
  bool ping = false;

  void clear() {
    for (std::string* s :
         {&name, &to, &from, &id, &type, &node, &item_id, &app, &sent, &expires, &data}) {
      s->clear();
    }
    ping = false;
  }
};

// One side of an XMPP connection: a streaming, namespace-aware expat parser fed with the stream
// header once and then with stanzas as they arrive. Not thread-safe; one per connection.
class XmppStreamParser {
 public:
  XmppStreamParser() : parser_(XML_ParserCreateNS(nullptr, '|')) {
    XML_SetUserData(parser_, this);
    XML_SetElementHandler(parser_, &XmppStreamParser::on_start, &XmppStreamParser::on_end);
    XML_SetCharacterDataHandler(parser_, &XmppStreamParser::on_text);
    constexpr std::string_view kHeader =
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
        "xmlns:stream='http://etherx.jabber.org/streams' from='push.example' id='s1' "
        "version='1.0'>";
    ok_ = true;
    ok_ = feed(kHeader) && depth_ == 1;
  }
  ~XmppStreamParser() { XML_ParserFree(parser_); }
  XmppStreamParser(const XmppStreamParser&) = delete;
  XmppStreamParser& operator=(const XmppStreamParser&) = delete;

  // Parses the next bytes of the stream; false on an XML error (a real server closes the stream).
  bool feed(std::string_view bytes) {
    return ok_ && XML_Parse(parser_, bytes.data(), static_cast<int>(bytes.size()), XML_FALSE) ==
                      XML_STATUS_OK;
  }
  // Stanzas completed so far, and the last one.
  std::uint64_t stanzas() const { return stanzas_; }
  const Stanza& last() const { return stanza_; }

 private:
  static std::string_view attr(const XML_Char** atts, std::string_view name) {
    for (; atts[0] != nullptr; atts += 2) {
      if (name == atts[0]) return atts[1];
    }
    return {};
  }

  static void on_start(void* user, const XML_Char* name, const XML_Char** atts) {
    auto* self = static_cast<XmppStreamParser*>(user);
    const int depth = self->depth_++;
    Stanza& s = self->stanza_;
    const std::string_view n = name;
    if (depth == 1) {  // a stanza starts
      s.clear();
      s.name = n;
      s.to = attr(atts, "to");
      s.from = attr(atts, "from");
      s.id = attr(atts, "id");
      s.type = attr(atts, "type");
    } else if (n == kPubsubItems) {
      s.node = attr(atts, "node");
    } else if (n == kPubsubItem) {
      s.item_id = attr(atts, "id");
    } else if (n == kHeraldPush) {
      s.app = attr(atts, "app");
      s.sent = attr(atts, "sent");
      s.expires = attr(atts, "expires");
      self->in_push_ = true;
    } else if (n == kPing) {
      s.ping = true;
    }
  }

  static void on_end(void* user, const XML_Char* name) {
    auto* self = static_cast<XmppStreamParser*>(user);
    if (std::string_view(name) == kHeraldPush) self->in_push_ = false;
    if (--self->depth_ == 1) ++self->stanzas_;
  }

  // Expat hands character data over in pieces (split at entity references and line ends).
  static void on_text(void* user, const XML_Char* text, int len) {
    auto* self = static_cast<XmppStreamParser*>(user);
    if (self->in_push_) self->stanza_.data.append(text, static_cast<std::size_t>(len));
  }

  XML_Parser parser_;
  bool ok_ = false;
  int depth_ = 0;  // 1 inside <stream:stream>, 2 inside a stanza
  bool in_push_ = false;
  std::uint64_t stanzas_ = 0;
  Stanza stanza_;
};

// Decodes one stanza and hands its fields to `check`.
template <class Check>
bool decode_stanza(XmppStreamParser& parser, std::string_view in, Check check) {
  const std::uint64_t before = parser.stanzas();
  return parser.feed(in) && parser.stanzas() == before + 1 && check(parser.last());
}

// <message to='phone-1@push.example' from='push.example' id='5f3a9c1e'>
//   <event xmlns='http://jabber.org/protocol/pubsub#event'>
//     <items node='inbox'><item id='42'/></items></event></message>       (one line on the wire)
// A XEP-0060 pubsub event notification: "item 42 was published to node inbox".
class XmppNotify {
 public:
  void encode(std::string& out) const {
    out += "<message";
    append_xml_attr("to", kDeviceJid, out);
    append_xml_attr("from", kServerJid, out);
    append_xml_attr("id", kNotifyStanzaId, out);
    out += "><event xmlns='http://jabber.org/protocol/pubsub#event'><items";
    append_xml_attr("node", kInboxNode, out);
    out += "><item";
    append_xml_attr("id", kSeq, out);
    out += "/></items></event></message>";
  }
  bool decode(std::string_view in) {
    return decode_stanza(parser_, in, [](const Stanza& s) {
      std::uint64_t seq = 0;
      return s.name == kClientMessage && s.to == kDeviceJid && s.from == kServerJid &&
             s.id == kNotifyStanzaId && s.node == kInboxNode && parse_uint(s.item_id, seq) &&
             seq == kSeq;
    });
  }

 private:
  XmppStreamParser parser_;
};

// <message to='phone-1@push.example' from='push.example' id='01HF8Z3K9Q2V7N4M6P8R0T2W4Y'>
//   <event xmlns='http://jabber.org/protocol/pubsub#event'><items node='inbox'><item id='42'>
//     <push xmlns='urn:herald:push:0' app='com.example.chat' sent='1700000000000'
//           expires='1700604800000'>{"type":"chat",...,"text":"... &lt;notes&gt; &amp; tea"}</push>
//   </item></items></event></message>                                       (one line on the wire)
// The same pubsub event with the item's payload: the message id as the stanza id, the JSON as
// escaped character data of a namespaced element whose attributes carry the entry's metadata.
class XmppMessage {
 public:
  explicit XmppMessage(std::string json) : json_(std::move(json)) {}
  bool encode(std::string& out) const {
    out += "<message";
    append_xml_attr("to", kDeviceJid, out);
    append_xml_attr("from", kServerJid, out);
    bool ok = append_xml_attr("id", kMessageId, out);
    out += "><event xmlns='http://jabber.org/protocol/pubsub#event'><items";
    append_xml_attr("node", kInboxNode, out);
    out += "><item";
    append_xml_attr("id", kSeq, out);
    out += "><push xmlns='urn:herald:push:0'";
    ok = append_xml_attr("app", kApp, out) && ok;
    append_xml_attr("sent", kSentAtMs, out);
    append_xml_attr("expires", kExpiresAtMs, out);
    out += '>';
    ok = append_xml_text(json_, out) && ok;
    out += "</push></item></items></event></message>";
    return ok;
  }
  bool decode(std::string_view in) {
    return decode_stanza(parser_, in, [this](const Stanza& s) {
      std::uint64_t seq = 0, sent = 0, expires = 0;
      return s.name == kClientMessage && s.to == kDeviceJid && s.from == kServerJid &&
             s.id == kMessageId && s.node == kInboxNode && parse_uint(s.item_id, seq) &&
             seq == kSeq && s.app == kApp && parse_uint(s.sent, sent) && sent == kSentAtMs &&
             parse_uint(s.expires, expires) && expires == kExpiresAtMs && s.data == json_;
    });
  }

 private:
  std::string json_;
  XmppStreamParser parser_;
};

// RFC 6120 section 4.6.1: a single space between stanzas keeps the connection alive. No answer.
class XmppWhitespace {
 public:
  void encode(std::string& out) const { out += ' '; }
  bool decode(std::string_view in) {
    const std::uint64_t before = parser_.stanzas();
    return parser_.feed(in) && parser_.stanzas() == before;
  }
  std::size_t answer_bytes() const { return 0; }

 private:
  XmppStreamParser parser_;
};

// XEP-0199 client-to-server ping: <iq to='push.example' id='c2s1' type='get'><ping
// xmlns='urn:xmpp:ping'/></iq>, answered by <iq from='push.example'
// to='phone-1@push.example/mobile' id='c2s1' type='result'/>.
class XmppPingIq {
 public:
  void encode(std::string& out) const {
    out += "<iq";
    append_xml_attr("to", kServerJid, out);
    append_xml_attr("id", "c2s1", out);
    append_xml_attr("type", "get", out);
    out += "><ping xmlns='urn:xmpp:ping'/></iq>";
  }
  bool decode(std::string_view in) {
    return decode_stanza(parser_, in, [](const Stanza& s) {
      return s.name == kClientIq && s.to == kServerJid && s.id == "c2s1" && s.type == "get" &&
             s.ping;
    });
  }
  std::size_t answer_bytes() const {
    std::string out = "<iq";
    append_xml_attr("from", kServerJid, out);
    append_xml_attr("to", kDeviceFullJid, out);
    append_xml_attr("id", "c2s1", out);
    append_xml_attr("type", "result", out);
    out += "/>";
    return out.size();
  }

 private:
  XmppStreamParser parser_;
};

// ---- MQTT 3.1.1 ----

// PUBLISH (MQTT 3.1.1 section 3.3):
//   +------------------+-------------------+-----------+-------+-----------+---------+
//   | 0x3 | DUP QoS R  | remaining length  | topic len | topic | packet id | payload |
//   | 1 byte           | varint, 1..4 B    | 2 B (BE)  |       | 2 B, QoS>0|         |
//   +------------------+-------------------+-----------+-------+-----------+---------+
constexpr std::uint32_t kMqttMaxRemainingLength = 268'435'455;  // 4 varint bytes
constexpr std::uint32_t kMqttMaxPacketBytes = 64 * 1024;        // the receiver's limit

void append_mqtt_remaining_length(std::uint32_t n, std::string& out) {
  do {
    auto byte = static_cast<std::uint8_t>(n % 128);
    n /= 128;
    if (n > 0) byte = static_cast<std::uint8_t>(byte | 0x80);
    out += static_cast<char>(byte);
  } while (n > 0);
}

void append_u16(std::uint16_t v, std::string& out) {
  out += static_cast<char>(v >> 8);
  out += static_cast<char>(v & 0xff);
}

// Preconditions: qos 0 or 1 (2 adds nothing to the size), packet_id != 0 when qos > 0, topic at
// most 65535 bytes, the whole under kMqttMaxRemainingLength.
void append_mqtt_publish(std::string_view topic, int qos, std::uint16_t packet_id,
                         std::string_view payload, std::string& out) {
  out += static_cast<char>(0x30 | (qos << 1));
  const std::size_t remaining = 2 + topic.size() + (qos > 0 ? 2 : 0) + payload.size();
  append_mqtt_remaining_length(static_cast<std::uint32_t>(remaining), out);
  append_u16(static_cast<std::uint16_t>(topic.size()), out);
  out.append(topic);
  if (qos > 0) append_u16(packet_id, out);
  out.append(payload);
}

struct MqttPublish {
  int qos = 0;
  std::uint16_t packet_id = 0;
  std::string_view topic;    // points into the input
  std::string_view payload;  // points into the input
};

enum class MqttParse { kComplete, kNeedMore, kBroken };

// Reads the fixed header: packet type byte and remaining length. kNeedMore consumes nothing.
MqttParse parse_mqtt_fixed_header(std::string_view in, std::uint8_t& first,
                                  std::uint32_t& remaining, std::size_t& header_bytes) {
  if (in.empty()) return MqttParse::kNeedMore;
  first = static_cast<std::uint8_t>(in[0]);
  remaining = 0;
  for (std::size_t i = 1;; ++i) {
    if (i > 4) return MqttParse::kBroken;  // a 5th length byte: malformed (section 2.2.3)
    if (i >= in.size()) return MqttParse::kNeedMore;
    const auto b = static_cast<std::uint8_t>(in[i]);
    remaining |= static_cast<std::uint32_t>(b & 0x7f) << (7 * (i - 1));
    if ((b & 0x80) == 0) {
      header_bytes = i + 1;
      break;
    }
  }
  if (remaining > kMqttMaxPacketBytes) return MqttParse::kBroken;  // before buffering the body
  if (in.size() - header_bytes < remaining) return MqttParse::kNeedMore;
  return MqttParse::kComplete;
}

// Parses one PUBLISH at the front of `in`. Every length is checked against what is left.
// Not checked: that the topic is well-formed UTF-8 (section 1.5.3) — a small saving that Herald's
// decoder, which validates its string fields, does not get.
MqttParse parse_mqtt_publish(std::string_view in, MqttPublish& p) {
  std::uint8_t first = 0;
  std::uint32_t remaining = 0;
  std::size_t header = 0;
  const MqttParse r = parse_mqtt_fixed_header(in, first, remaining, header);
  if (r != MqttParse::kComplete) return r;
  if ((first >> 4) != 3) return MqttParse::kBroken;
  p.qos = (first >> 1) & 3;
  if (p.qos == 3) return MqttParse::kBroken;
  std::string_view body = in.substr(header, remaining);
  if (body.size() < 2) return MqttParse::kBroken;
  const std::size_t topic_len =
      (static_cast<std::uint8_t>(body[0]) << 8) | static_cast<std::uint8_t>(body[1]);
  body.remove_prefix(2);
  if (topic_len == 0 || topic_len > body.size()) return MqttParse::kBroken;
  p.topic = body.substr(0, topic_len);
  if (p.topic.find_first_of(std::string_view("+#\0", 3)) != std::string_view::npos) {
    return MqttParse::kBroken;  // no wildcards or NUL in a PUBLISH topic (section 3.3.2.1)
  }
  body.remove_prefix(topic_len);
  p.packet_id = 0;
  if (p.qos > 0) {
    if (body.size() < 2) return MqttParse::kBroken;
    p.packet_id = static_cast<std::uint16_t>((static_cast<std::uint8_t>(body[0]) << 8) |
                                             static_cast<std::uint8_t>(body[1]));
    if (p.packet_id == 0) return MqttParse::kBroken;
    body.remove_prefix(2);
  }
  p.payload = body;
  return MqttParse::kComplete;
}

static_assert(kMqttMaxPacketBytes <= kMqttMaxRemainingLength);

// PUBLISH d/phone-1/n, payload "42" (the seq as decimal text).
class MqttNotify {
 public:
  explicit MqttNotify(int qos) : qos_(qos) {}
  void encode(std::string& out) const {
    std::array<char, 20> buf;
    const auto r = std::to_chars(buf.data(), buf.data() + buf.size(), kSeq);
    append_mqtt_publish(kMqttNotifyTopic, qos_, kMqttPacketId,
                        std::string_view(buf.data(), static_cast<std::size_t>(r.ptr - buf.data())),
                        out);
  }
  bool decode(std::string_view in) const {
    MqttPublish p;
    std::uint64_t seq = 0;
    return parse_mqtt_publish(in, p) == MqttParse::kComplete && p.qos == qos_ &&
           p.packet_id == (qos_ > 0 ? kMqttPacketId : 0) && p.topic == kMqttNotifyTopic &&
           parse_uint(p.payload, seq) && seq == kSeq;
  }
  std::size_t answer_bytes() const { return qos_ > 0 ? 4 : 0; }  // PUBACK

 private:
  int qos_;
};

// PUBLISH QoS 1 to d/phone-1/m/com.example.chat, payload = the JSON. MQTT 3.1.1 has no
// properties: the message id, sent time and expiry Herald's Entry carries have no place here
// unless the payload wraps them (not done: this is the bare minimum MQTT sends).
class MqttMessage {
 public:
  explicit MqttMessage(std::string json) : json_(std::move(json)) {}
  void encode(std::string& out) const {
    append_mqtt_publish(kMqttMessageTopic, 1, kMqttPacketId, json_, out);
  }
  bool decode(std::string_view in) const {
    MqttPublish p;
    return parse_mqtt_publish(in, p) == MqttParse::kComplete && p.qos == 1 &&
           p.packet_id == kMqttPacketId && p.topic == kMqttMessageTopic && p.payload == json_;
  }
  std::size_t answer_bytes() const { return 4; }  // PUBACK

 private:
  std::string json_;
};

class MqttPingreq {
 public:
  void encode(std::string& out) const { out.append(kPingreq); }
  bool decode(std::string_view in) const {
    std::uint8_t first = 0;
    std::uint32_t remaining = 0;
    std::size_t header = 0;
    return parse_mqtt_fixed_header(in, first, remaining, header) == MqttParse::kComplete &&
           first == 0xC0 && remaining == 0 && header == in.size();
  }
  std::size_t answer_bytes() const { return 2; }  // PINGRESP: D0 00

 private:
  static constexpr std::string_view kPingreq{"\xC0\x00", 2};
};

// ---- Registration ----

template <class Codec>
void set_counters(benchmark::State& state, const Codec& codec, std::size_t bytes) {
  state.counters["bytes"] = static_cast<double>(bytes);
  if constexpr (requires { codec.answer_bytes(); }) {
    state.counters["answer_bytes"] = static_cast<double>(codec.answer_bytes());
  }
}

template <class Codec>
bool encode_into(Codec& codec, std::string& out) {
  if constexpr (std::is_same_v<decltype(codec.encode(out)), bool>) {
    return codec.encode(out);
  } else {
    codec.encode(out);
    return true;
  }
}

template <class Codec, class... Args>
void register_case(const std::string& name, Args... args) {
  benchmark::RegisterBenchmark(("Encode/" + name).c_str(), [=](benchmark::State& state) {
    Codec codec(args...);
    std::string out;
    for (auto _ : state) {
      out.clear();
      if (!encode_into(codec, out)) {
        state.SkipWithError("encode refused the content");
        break;
      }
      benchmark::DoNotOptimize(out.data());
    }
    set_counters(state, codec, out.size());
  });
  benchmark::RegisterBenchmark(("Decode/" + name).c_str(), [=](benchmark::State& state) {
    Codec codec(args...);
    std::string in;
    if (!encode_into(codec, in)) {
      state.SkipWithError("encode refused the content");
      return;
    }
    for (auto _ : state) {
      if (!codec.decode(in)) {
        state.SkipWithError("decoded fields differ from the encoded ones");
        break;
      }
    }
    set_counters(state, codec, in.size());
  });
}

const bool kRegistered = [] {
  register_case<HeraldNotify>("Notify/Herald");
  register_case<XmppNotify>("Notify/XMPP");
  register_case<MqttNotify>("Notify/MQTT_QoS0", 0);
  register_case<MqttNotify>("Notify/MQTT_QoS1", 1);

  const std::string small = small_json();
  const std::string large = large_json();
  const std::string small_name = "Message" + std::to_string(small.size()) + "B/";
  const std::string large_name = "Message" + std::to_string(large.size()) + "B/";
  register_case<HeraldMessage>(small_name + "Herald", small);
  register_case<XmppMessage>(small_name + "XMPP", small);
  register_case<MqttMessage>(small_name + "MQTT_QoS1", small);
  register_case<HeraldMessage>(large_name + "Herald", large);
  register_case<XmppMessage>(large_name + "XMPP", large);
  register_case<MqttMessage>(large_name + "MQTT_QoS1", large);

  register_case<HeraldPing>("Heartbeat/Herald_Ping");
  register_case<XmppWhitespace>("Heartbeat/XMPP_whitespace");
  register_case<XmppPingIq>("Heartbeat/XMPP_ping_iq");
  register_case<MqttPingreq>("Heartbeat/MQTT_PINGREQ");
  return true;
}();

}  // namespace
}  // namespace herald::protocol

BENCHMARK_MAIN();
