// What leaves for the transport: every wire message passes here on its way to onWrite.
//
// - An OTR query (ours, or the one libotr sends after an OTR error) keeps libotr's version
//   tag and gets the channel's human-readable text instead of libotr's several lines of HTML.
// - On a line-based transport (IRC) a line break would end the transport's message: the rest
//   would be parsed as a command, or shown as chat. There, a query's text is joined into one
//   line, and anything else with line breaks (a plaintext message, an error text) goes out as
//   one wire message per non-empty line. Encrypted messages and fragments never have any.
#include <cstring>

#include "engine/engine.h"

namespace otr {

namespace {

bool IsLineBreak(char c) { return c == '\n' || c == '\r'; }

bool IsQuery(const char* message) {
  return std::strncmp(message, "?OTR", 4) == 0 && otrl_proto_message_type(message) == OTRL_MSGTYPE_QUERY;
}

// libotr's query is "<version tag>\n<text>"; the tag is what a receiving libotr reads.
std::string QueryFor(const ChannelRecord& channel, const char* message) {
  const char* end = message;
  while (*end != '\0' && !IsLineBreak(*end) && *end != ' ') ++end;
  std::string query(message, end);
  if (!channel.customQuery) {
    query.append(end);
  } else if (!channel.queryText.empty()) {
    query.push_back(' ');
    query.append(channel.queryText);
  }
  return query;
}

std::string OneLine(const std::string& text) {
  std::string line;
  line.reserve(text.size());
  bool lastWasSpace = false;
  for (char c : text) {
    if (IsLineBreak(c)) c = ' ';
    if (c == ' ' && lastWasSpace) continue;
    lastWasSpace = c == ' ';
    line.push_back(c);
  }
  while (!line.empty() && line.back() == ' ') line.pop_back();
  return line;
}

void Send(CallScope& scope, uint32_t channelId, std::string text) {
  scope.effects.push_back(MakeEffect(channelId, WritePayload{std::move(text)}));
}

}  // namespace

void Engine::EmitWire(CallScope& scope, ChannelRecord* channel, const char* message) {
  // A reply to a contact over its budget (budget.cc) is withheld.
  if (scope.withholdReplies) {
    ++scope.repliesWithheld;
    return;
  }
  ++scope.repliesSent;
  const uint32_t id = channel != nullptr ? channel->id : 0;
  if (channel == nullptr) return Send(scope, id, message);
  if (IsQuery(message)) {
    std::string query = QueryFor(*channel, message);
    return Send(scope, id, channel->lineBased ? OneLine(query) : std::move(query));
  }
  if (!channel->lineBased || std::strpbrk(message, "\r\n") == nullptr) return Send(scope, id, message);
  const char* start = message;
  while (*start != '\0') {
    const char* end = start;
    while (*end != '\0' && !IsLineBreak(*end)) ++end;
    if (end > start) Send(scope, id, std::string(start, end));
    start = *end != '\0' ? end + 1 : end;
  }
}

}  // namespace otr
