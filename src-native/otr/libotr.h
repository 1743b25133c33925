// The one place that includes libotr's C headers, so every file sees them the same way.
#pragma once

extern "C" {
#include <gcrypt.h>
// libotr's headers are not self-contained: message.h uses proto.h's types, so proto.h comes
// first, in a block of its own (clang-format sorts each block).
#include <libotr/proto.h>

#include <libotr/context.h>
#include <libotr/instag.h>
#include <libotr/message.h>
#include <libotr/privkey.h>
#include <libotr/tlv.h>
#include <libotr/userstate.h>
}

// CVE-2016-2851 (heap overflow through fragments) is fixed in 4.1.1, and the private
// structures we read are those of the 4.1 series. init.cc checks the running library too.
#if OTRL_VERSION_MAJOR != 4 || OTRL_VERSION_MINOR != 1 || OTRL_VERSION_SUB < 1
#error "protocol-otr needs libotr 4.1.1 or a later 4.1.x (Debian/Ubuntu: apt-get install libotr5-dev)"
#endif
