//! The handler's view of the data plane: the few [`Engine`] operations an
//! NG command needs, as a trait so that the handler can be driven by a fake
//! in tests.

use std::sync::Arc;

use crate::engine::{CallId, CallInfo, CallSpec, Engine, EngineError, EngineStats, LegUpdate};
use crate::relay::{RemovedCall, StreamSnapshot};

/// What the NG handler asks of the media plane (implemented by [`Engine`]).
pub trait MediaPlane {
    /// Allocates ports and installs a two-leg call.
    fn create_call(&self, spec: CallSpec) -> Result<CallInfo, EngineError>;
    /// Changes one leg (0 or 1) of a call.
    fn update_leg(&self, id: CallId, leg: usize, update: LegUpdate) -> Result<(), EngineError>;
    /// Snapshots of a call's streams.
    fn query(&self, id: CallId) -> Result<Vec<StreamSnapshot>, EngineError>;
    /// Removes a call, releasing its ports; returns its final state.
    fn delete_call(&self, id: CallId) -> Result<RemovedCall, EngineError>;
    /// Engine-wide counters.
    fn stats(&self) -> EngineStats;
    /// Fills `buf` with cryptographically random bytes (SRTP master keys),
    /// from the kernel's generator.
    fn random(&self, buf: &mut [u8]) -> std::io::Result<()> {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")?.read_exact(buf)
    }
    /// The fingerprint of the certificate the relay presents in DTLS-SRTP
    /// handshakes (RFC 8122 §5), for `a=fingerprint`.
    fn dtls_fingerprint(&self) -> Result<crate::dtls::Fingerprint, EngineError>;
}

impl MediaPlane for Engine {
    fn create_call(&self, spec: CallSpec) -> Result<CallInfo, EngineError> {
        Engine::create_call(self, spec)
    }
    fn update_leg(&self, id: CallId, leg: usize, update: LegUpdate) -> Result<(), EngineError> {
        Engine::update_leg(self, id, leg, update)
    }
    fn query(&self, id: CallId) -> Result<Vec<StreamSnapshot>, EngineError> {
        Engine::query(self, id)
    }
    fn delete_call(&self, id: CallId) -> Result<RemovedCall, EngineError> {
        Engine::delete_call(self, id)
    }
    fn stats(&self) -> EngineStats {
        Engine::stats(self)
    }
    fn dtls_fingerprint(&self) -> Result<crate::dtls::Fingerprint, EngineError> {
        Engine::dtls_fingerprint(self)
    }
}

impl<T: MediaPlane + ?Sized> MediaPlane for Arc<T> {
    fn create_call(&self, spec: CallSpec) -> Result<CallInfo, EngineError> {
        (**self).create_call(spec)
    }
    fn update_leg(&self, id: CallId, leg: usize, update: LegUpdate) -> Result<(), EngineError> {
        (**self).update_leg(id, leg, update)
    }
    fn query(&self, id: CallId) -> Result<Vec<StreamSnapshot>, EngineError> {
        (**self).query(id)
    }
    fn delete_call(&self, id: CallId) -> Result<RemovedCall, EngineError> {
        (**self).delete_call(id)
    }
    fn stats(&self) -> EngineStats {
        (**self).stats()
    }
    fn random(&self, buf: &mut [u8]) -> std::io::Result<()> {
        (**self).random(buf)
    }
    fn dtls_fingerprint(&self) -> Result<crate::dtls::Fingerprint, EngineError> {
        (**self).dtls_fingerprint()
    }
}
