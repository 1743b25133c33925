// Limits on what one contact's messages can make libotr keep in memory. libotr creates a
// context for every new instance tag a message claims and never drops it, and it grows a
// fragmented message for as long as fragments keep coming: a hostile or broken peer could
// make either grow without end. A bridge runs for months, so both are bounded here, before
// the message reaches libotr.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include "engine.h"

namespace otr {

namespace {

// Instances a contact may have at once (devices, or clients that change their tag). When a
// new one arrives at the limit, the instance idle the longest that has no encrypted session
// is forgotten to make room.
constexpr size_t kMaxInstancesPerContact = 32;
// The largest message reassembled from fragments (libotr's own limit is 65,535 fragments
// of any size).
constexpr size_t kMaxReassembledBytes = 1 << 20;

struct Header {
  bool fragment = false;
  unsigned int sender = 0;  // 0 when the message names no v3 instance
};

// Mirrors how otrl_message_receiving finds the sender's instance: the v3 fragment header,
// else the header of a v3 encoded message.
Header ReadHeader(const std::string& text) {
  Header header;
  const char* tag = std::strstr(text.c_str(), "?OTR");
  if (tag == nullptr) return header;
  if (std::strstr(text.c_str(), "?OTR|") != nullptr) {
    header.fragment = true;
    unsigned int receiver = 0;
    if (std::sscanf(tag, "?OTR|%x|%x,", &header.sender, &receiver) != 2) header.sender = 0;
    return header;
  }
  header.fragment = std::strncmp(tag, "?OTR,", 5) == 0;
  unsigned int receiver = 0;
  if (!header.fragment && otrl_proto_instance(tag, &header.sender, &receiver) != 0) header.sender = 0;
  return header;
}

time_t LastActive(const ConnContext* context) {
  return std::max(context->context_priv->lastsent, context->context_priv->lastrecv);
}

}  // namespace

// Forgets one instance context and everything libotr allocated for it, including the
// private part otrl_context_forget leaves behind, and every pointer we or libotr keep to it.
void Engine::ForgetInstance(ChannelRecord& channel, ConnContext* instance) {
  ConnContext* master = instance->m_context;
  if (master->recent_child == instance) master->recent_child = nullptr;
  if (master->recent_rcvd_child == instance) master->recent_rcvd_child = nullptr;
  if (master->recent_sent_child == instance) master->recent_sent_child = nullptr;
  auto& rekeyed = channel.rekeyedByContact;
  for (auto it = rekeyed.begin(); it != rekeyed.end();) it = *it == instance ? rekeyed.erase(it) : it + 1;
  if (channel.selected == instance->their_instance) channel.selected = OTRL_INSTAG_BEST;
  ConnContextPriv* leftover = instance->context_priv;
  otrl_context_force_plaintext(instance);  // frees what the private part points to
  if (otrl_context_forget(instance) == 0) std::free(leftover);
}

bool Engine::AdmitIncoming(CallScope& scope, ChannelRecord& channel, const std::string& text) {
  const Header header = ReadHeader(text);
  ConnContext* master = MasterFor(channel);
  if (master == nullptr) return true;

  ConnContext* known = header.sender < OTRL_MIN_VALID_INSTAG ? master : nullptr;
  size_t instances = 0;
  ConnContext* idlest = nullptr;
  for (ConnContext* c = master->next; c != nullptr && c->m_context == master; c = c->next) {
    ++instances;
    if (c->their_instance == header.sender) known = c;
    if (c->msgstate == OTRL_MSGSTATE_ENCRYPTED) continue;
    if (idlest == nullptr || LastActive(c) < LastActive(idlest)) idlest = c;
  }

  if (known == nullptr && instances >= kMaxInstancesPerContact) {
    if (idlest == nullptr) {
      Effect effect{EffectKind::MsgEvent};
      effect.channel = channel.id;
      effect.a = OTRL_MSGEVENT_RCVDMSG_GENERAL_ERR;
      effect.hasText = true;
      effect.text = "dropped a message from a new instance: the contact already has " +
                    std::to_string(kMaxInstancesPerContact) + " encrypted sessions";
      scope.effects.push_back(std::move(effect));
      return false;
    }
    ForgetInstance(channel, idlest);
    scope.stateMayHaveChanged = true;
  }

  if (header.fragment && known != nullptr) {
    ConnContextPriv* priv = known->context_priv;
    if (priv->fragment != nullptr && priv->fragment_len + text.size() > kMaxReassembledBytes) {
      // Drop the partial message only: the session's keys stay as they are.
      std::free(priv->fragment);
      priv->fragment = nullptr;
      priv->fragment_len = 0;
      priv->fragment_n = 0;
      priv->fragment_k = 0;
      Effect effect{EffectKind::MsgEvent};
      effect.channel = channel.id;
      effect.a = OTRL_MSGEVENT_RCVDMSG_GENERAL_ERR;
      effect.hasText = true;
      effect.text = "dropped a fragmented message larger than " + std::to_string(kMaxReassembledBytes) + " bytes";
      scope.effects.push_back(std::move(effect));
      return false;
    }
  }
  return true;
}

}  // namespace otr
