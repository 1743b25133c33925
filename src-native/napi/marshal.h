// The engine's deliveries → what the JS dispatcher reads. One call of the dispatcher carries a whole
// Delivery (several jobs' batches); numbers travel in a Float64Array the handle reuses, and
// only strings and objects are created as JS values. contract.json declares the layout
// (contract.h: kBatchSlots, kEffectSlots, each payload's Encode).
#pragma once

#include <napi.h>

#include <vector>

#include "engine/effects.h"

namespace otr {

size_t SlotsFor(const Delivery& delivery);

// Writes `delivery` into nums (SlotsFor() doubles) and appends the strings and objects it
// refers to, by index, to `values`: the dispatcher gets them as arguments, which is cheaper
// than setting them one by one into an array.
void Encode(Napi::Env env, const Delivery& delivery, double* nums, std::vector<napi_value>& values);

// A JS string from UTF-8 text; ASCII (every OTR wire message) skips UTF-8 decoding.
napi_value MakeString(napi_env env, const std::string& text);

// The UTF-8 bytes of a JS string in one pass (node-addon-api's Utf8Value measures first).
bool ReadString(napi_env env, napi_value value, std::string& out);

}  // namespace otr
