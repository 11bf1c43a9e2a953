// tortie_native: N-API addon over libbpf. Thin by design: src/dataplane/native validates options
// and passes checked positional arguments; this side guards memory safety, does the syscalls and
// turns every failure into an instance of the BpfError class handed to init().
//
// Exports: init(BpfError); map ops (mapLookup/Update/Delete/GetNextKey/Keys, batch ops, mapInfo,
// mapCreate, objGet/objPin, fdDup/fdClose, possibleCpus); prog ops (progTestRun, batched sync and
// async, progInfo, progFdById); interface ops (ifindex, tc*, xdp*); classes BpfObject, RingBuffer.
#include "common.h"

namespace tortie {
namespace {

// init(BpfError): must be called once before anything can fail. The constructor is called as
// new BpfError(code, op, errno, detail, log).
Napi::Value InitErrors(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (!info[0].IsFunction()) {
    Napi::TypeError::New(env, "init(BpfError): argument must be the BpfError class").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  State(env).errorCtor = Napi::Persistent(info[0].As<Napi::Function>());
  return env.Undefined();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  InstallLibbpfPrint();
  env.SetInstanceData(new AddonState());
  exports.Set("init", Napi::Function::New(env, InitErrors, "init"));
  InitMaps(env, exports);
  InitProgs(env, exports);
  InitNetif(env, exports);
  InitObject(env, exports);
  InitRingBuffer(env, exports);
  return exports;
}

}  // namespace tortie

static Napi::Object InitModule(Napi::Env env, Napi::Object exports) { return tortie::Init(env, exports); }

NODE_API_MODULE(tortie_native, InitModule)
