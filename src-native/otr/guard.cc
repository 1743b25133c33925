// Limits on what one contact's messages can make libotr keep in memory. libotr creates a
// context for every new instance tag a message claims and never drops it, and it grows a
// fragmented message for as long as fragments keep coming: a hostile or broken peer could
// make either grow without end. A bridge runs for months, so both are bounded here.
//
// Two steps, because a guard that guesses what libotr will do can be fooled by a message
// libotr reads differently: before the call, each message's header is parsed exactly as
// libotr 4.1 parses it (same search, same sscanf formats) so an oversized fragment is
// refused before libotr copies it; after the call, what libotr actually kept for the
// contact (its instance contexts, its partial fragments) is counted and trimmed back to the
// limits, whatever the header said.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "engine/engine.h"

namespace otr {

namespace {

// A message as otrl_message_receiving (4.1.x) reads it before any decoding.
struct IncomingHeader {
  bool instanceFragment = false;  // holds "?OTR|": libotr accumulates it on `sender`'s context
  unsigned int sender = 0;        // as libotr's sscanf leaves it, also when the rest fails
  unsigned int receiver = 0;
  bool fragment = false;  // a fragment header libotr accepts (k, n, start < end)
  unsigned short k = 0, n = 0;
  size_t bytes = 0;    // what libotr would copy from it
  size_t pieceAt = 0;  // where that piece starts in the message
};

// libotr's formats end in "%n%*[^,],%n": the piece (one or more characters other than a comma)
// and the comma after it. Matched by hand with the same result, because vfscanf reads a
// bracket set one character at a time: tens of microseconds for a 1,400-byte fragment, on
// every fragment. Returns the offset after the comma, or 0 where sscanf would not set it.
int EndOfPiece(const char* tag, int start) {
  if (start <= 0) return 0;
  const char* piece = tag + start;
  const char* comma = std::strchr(piece, ',');
  if (comma == nullptr || comma == piece) return 0;
  return static_cast<int>(comma - tag) + 1;
}

// The same searches and the same sscanf formats as message.c and proto.c, on purpose: the
// instance tag is read from the *first* "?OTR" although libotr looks for "?OTR|" anywhere,
// and a v2 fragment header ("?OTR,") counts wherever it is.
IncomingHeader ReadHeader(const std::string& text) {
  IncomingHeader header;
  const char* message = text.c_str();
  const char* otrtag = std::strstr(message, "?OTR");
  if (otrtag == nullptr) return header;
  int start = 0, end = 0;
  const char* tag = std::strstr(message, "?OTR|");
  if (tag != nullptr) {
    header.instanceFragment = true;
    std::sscanf(otrtag, "?OTR|%x|%x,", &header.sender, &header.receiver);
    std::sscanf(tag, "?OTR|%*x|%*x,%hu,%hu,%n", &header.k, &header.n, &start);
  } else if ((tag = std::strstr(message, "?OTR,")) != nullptr) {
    std::sscanf(tag, "?OTR,%hu,%hu,%n", &header.k, &header.n, &start);
  } else {
    return header;
  }
  end = EndOfPiece(tag, start);
  if (header.k > 0 && header.n > 0 && header.k <= header.n && start > 0 && end > 0 && start < end) {
    header.fragment = true;
    header.bytes = static_cast<size_t>(end - start - 1);
    header.pieceAt = static_cast<size_t>(tag - message) + static_cast<size_t>(start);
  }
  return header;
}

// When the session was last used, in the channel's own order (libotr's times are in seconds:
// every session of a busy contact would tie). Sessions never seen here count as oldest.
uint64_t LastUse(const ChannelRecord& channel, const ConnContext* context) {
  const auto found = channel.lastUse.find(context);
  return found == channel.lastUse.end() ? 0 : found->second;
}

void DropFragment(ConnContext* context) {
  ConnContextPriv* priv = context->context_priv;
  std::free(priv->fragment);
  priv->fragment = nullptr;
  priv->fragment_len = 0;
  priv->fragment_n = 0;
  priv->fragment_k = 0;
}

void Report(CallScope& scope, ChannelRecord& channel, std::string text) {
  scope.effects.push_back(
      MakeEffect(channel.id, MsgEventPayload{OTRL_MSGEVENT_RCVDMSG_GENERAL_ERR, true, std::move(text)}));
}

template <typename Visit>
void ForEachContext(ConnContext* master, Visit visit) {
  for (ConnContext* c = master; c != nullptr && c->m_context == master; c = c->next) visit(c);
}

}  // namespace

// Forgets one instance context and everything libotr allocated for it, including the
// private part otrl_context_forget leaves behind, and every pointer we or libotr keep to it.
void Engine::ForgetInstance(CallScope* scope, ChannelRecord* channel, ConnContext* instance) {
  ConnContext* master = instance->m_context;
  if (master->recent_child == instance) master->recent_child = nullptr;
  if (master->recent_rcvd_child == instance) master->recent_rcvd_child = nullptr;
  if (master->recent_sent_child == instance) master->recent_sent_child = nullptr;
  auto erase = [instance](std::vector<ConnContext*>& list) {
    list.erase(std::remove(list.begin(), list.end(), instance), list.end());
  };
  if (channel != nullptr) {
    erase(channel->rekeyedByContact);
    channel->lastUse.erase(instance);
    if (channel->selected == instance->their_instance) channel->selected = OTRL_INSTAG_BEST;
  }
  if (scope != nullptr) {
    erase(scope->wentSecure);
    erase(scope->smpToAbort);
    auto& answers = scope->smpAnswers;
    answers.erase(
        std::remove_if(answers.begin(), answers.end(), [instance](const auto& a) { return a.first == instance; }),
        answers.end());
  }
  ConnContextPriv* leftover = instance->context_priv;
  otrl_context_force_plaintext(instance);  // frees what the private part points to
  if (otrl_context_forget(instance) == 0) std::free(leftover);
}

// The type of the message a fragment completes, from its first bytes (the first fragment's
// piece, kept by libotr on the context).
static OtrlMessageType TypeOfStart(const char* start, size_t length) {
  std::string head(start, std::min<size_t>(length, 16));
  return otrl_proto_message_type(head.c_str());
}

bool Engine::AdmitIncoming(CallScope& scope, ChannelRecord& channel, const std::string& text, OtrlMessageType* type) {
  *type = OTRL_MSGTYPE_NOTOTR;
  if (text.size() > limits_.maxIncomingBytes) {
    Report(scope, channel,
           "dropped a message of " + std::to_string(text.size()) + " bytes: larger than maxIncomingSize (" +
               std::to_string(limits_.maxIncomingBytes) + ")");
    return false;
  }
  const IncomingHeader header = ReadHeader(text);
  if (!header.fragment) {
    *type = otrl_proto_message_type(text.c_str());
    return true;
  }
  // A message of one fragment is handled at once; a last fragment completes what the context kept.
  if (header.k == 1 && header.n == 1) *type = TypeOfStart(text.data() + header.pieceAt, header.bytes);
  ConnContext* master = MasterFor(channel);
  if (master == nullptr) {
    // The contact's first message: nothing is kept yet, only this fragment would be.
    if (header.bytes <= limits_.maxReassembledBytes) return true;
    Report(scope, channel,
           "dropped a message fragment of " + std::to_string(header.bytes) + " bytes: larger than maxFragmentedSize (" +
               std::to_string(limits_.maxReassembledBytes) + ")");
    return false;
  }
  // The context libotr will add the fragment to: the sender's instance for "?OTR|", else the master.
  ConnContext* target = nullptr;
  if (!header.instanceFragment) {
    target = master;
  } else if (header.sender >= OTRL_MIN_VALID_INSTAG) {
    ForEachContext(master, [&](ConnContext* c) {
      if (c != master && c->their_instance == header.sender) target = c;
    });
  } else {
    return true;  // libotr reports it malformed and keeps nothing
  }
  size_t others = 0;
  ForEachContext(master, [&](ConnContext* c) {
    if (c != target) others += c->context_priv->fragment_len;
  });
  size_t kept = 0;
  if (header.k == 1) {
    kept = header.bytes;  // a first fragment replaces what the context held
  } else if (target != nullptr && header.n == target->context_priv->fragment_n &&
             header.k == target->context_priv->fragment_k + 1) {
    kept = target->context_priv->fragment_len + header.bytes;
    if (header.k == header.n && target->context_priv->fragment != nullptr) {
      *type = TypeOfStart(target->context_priv->fragment, target->context_priv->fragment_len);
    }
  }
  if (others + kept <= limits_.maxReassembledBytes) return true;
  if (target != nullptr) DropFragment(target);
  Report(scope, channel,
         "dropped a fragmented message: it would keep " + std::to_string(others + kept) +
             " bytes of fragments, more than maxFragmentedSize (" + std::to_string(limits_.maxReassembledBytes) + ")");
  return false;
}

void Engine::TrimAfterReceive(CallScope& scope, ChannelRecord& channel, const std::vector<ConnContext*>& before) {
  ConnContext* master = MasterFor(channel);
  if (master == nullptr) return;
  auto isNew = [&](ConnContext* c) { return std::find(before.begin(), before.end(), c) == before.end(); };

  size_t instances = 0;
  size_t fragments = 0;
  ForEachContext(master, [&](ConnContext* c) {
    if (c != master) ++instances;
    fragments += c->context_priv->fragment_len;
  });

  // libotr adds an instance for a fragment without telling update_context_list.
  if (instances + 1 != before.size()) scope.stateMayHaveChanged = true;

  // At most maxInstancesPerContact instance sessions, and one more while it is not encrypted
  // (an AKE in progress may replace an encrypted one once it completes). Non-encrypted ones go
  // first, an older one before the new one; once every one is encrypted, the one with the least
  // to lose: unverified before verified, idle the longest. The session writes go to when the
  // channel selected it by its tag stays.
  auto encrypted = [](ConnContext* c) { return c->msgstate == OTRL_MSGSTATE_ENCRYPTED; };
  auto verified = [](ConnContext* c) {
    return c->active_fingerprint != nullptr && c->active_fingerprint->trust != nullptr &&
           c->active_fingerprint->trust[0] != '\0';
  };
  auto pick = [&](auto eligible, auto rank) {
    ConnContext* victim = nullptr;
    for (ConnContext* c = master->next; c != nullptr && c->m_context == master; c = c->next) {
      if (!eligible(c) || (channel.selected != OTRL_INSTAG_BEST && c->their_instance == channel.selected)) continue;
      if (victim == nullptr || rank(c) < rank(victim) ||
          (rank(c) == rank(victim) && LastUse(channel, c) < LastUse(channel, victim))) {
        victim = c;
      }
    }
    return victim;
  };
  bool droppedNew = false;
  auto drop = [&](ConnContext* victim) {
    droppedNew = droppedNew || isNew(victim);
    fragments -= victim->context_priv->fragment_len;
    ForgetInstance(&scope, &channel, victim);
    --instances;
    scope.stateMayHaveChanged = true;
  };
  for (;;) {
    size_t plain = 0;
    ForEachContext(master, [&](ConnContext* c) { plain += c != master && !encrypted(c) ? 1 : 0; });
    ConnContext* victim = nullptr;
    if (instances - plain > limits_.maxInstancesPerContact) {
      victim = pick(encrypted, [&](ConnContext* c) { return verified(c) ? 1 : 0; });
    } else if (instances > limits_.maxInstancesPerContact + 1) {
      victim = pick([&](ConnContext* c) { return !encrypted(c); }, [&](ConnContext* c) { return isNew(c) ? 1 : 0; });
    }
    if (victim == nullptr) break;
    drop(victim);
  }
  if (droppedNew) {
    Report(scope, channel,
           "dropped a message from a new instance: the contact already has " +
               std::to_string(limits_.maxInstancesPerContact) + " instance sessions");
  }

  if (fragments > limits_.maxReassembledBytes) {
    ForEachContext(master, DropFragment);
    Report(scope, channel,
           "dropped the contact's partial fragmented messages: " + std::to_string(fragments) +
               " bytes, more than maxFragmentedSize (" + std::to_string(limits_.maxReassembledBytes) + ")");
  }
}

}  // namespace otr
