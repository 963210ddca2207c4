// Benchmark support (bench.cc): the rdmaq-perf --engine loops and memcpyBandwidth, kept out of the queue's
// own files.
#pragma once

#include <napi.h>

namespace rdmaq::bench {

Napi::Value MemcpyBandwidth(const Napi::CallbackInfo& info);
Napi::Value EngineLatPing(const Napi::CallbackInfo& info);
Napi::Value EngineLatPong(const Napi::CallbackInfo& info);
Napi::Value EngineBwSend(const Napi::CallbackInfo& info);
Napi::Value EngineBwRecv(const Napi::CallbackInfo& info);

}  // namespace rdmaq::bench

namespace rdmaq::fabric::bench {

Napi::Value FabricEngineLatPing(const Napi::CallbackInfo& info);
Napi::Value FabricEngineLatPong(const Napi::CallbackInfo& info);
Napi::Value FabricEngineBwSend(const Napi::CallbackInfo& info);
Napi::Value FabricEngineBwRecv(const Napi::CallbackInfo& info);

}  // namespace rdmaq::fabric::bench
