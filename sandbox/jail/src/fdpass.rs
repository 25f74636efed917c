//! One message with descriptors on a `SOCK_SEQPACKET` socket, blocking: how requests and the descriptors
//! they need travel between the daemon, the zygote, launchers and jails.

#![allow(unsafe_code)]
use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::sys::socket::{ControlMessage, ControlMessageOwned, MsgFlags, recvmsg, sendmsg};

use crate::error::{Context, Error};

/// Sends `body` with `fds` (duplicated into the receiver by the kernel).
pub fn send(sock: BorrowedFd<'_>, body: &[u8], fds: &[RawFd]) -> Result<(), Error> {
    let iov = [IoSlice::new(body)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::MSG_NOSIGNAL, None).what(|| "sendmsg".into())?;
    Ok(())
}

/// Receives one message of at most `max` bytes with up to `max_fds` descriptors (close-on-exec). An empty
/// body means the peer closed its end. A message cut short is an error: a truncated request is never acted on.
pub fn recv(sock: BorrowedFd<'_>, max: usize, max_fds: usize) -> Result<(Vec<u8>, Vec<OwnedFd>), Error> {
    let mut buf = vec![0u8; max];
    let mut space = vec![0u8; nix::sys::socket::cmsg_space::<RawFd>() * max_fds.max(1)];
    let (len, fds, truncated) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = loop {
            match recvmsg::<()>(
                sock.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r.what(|| "recvmsg".into())?,
            }
        };
        let mut fds = Vec::new();
        for cmsg in msg.cmsgs().what(|| "control message".into())? {
            if let ControlMessageOwned::ScmRights(received) = cmsg {
                // SAFETY: the kernel installed these descriptors in this process for this message; nothing
                // else owns them, so each is wrapped exactly once.
                fds.extend(received.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
            }
        }
        let truncated = msg.flags.intersects(MsgFlags::MSG_TRUNC | MsgFlags::MSG_CTRUNC);
        (msg.bytes, fds, truncated)
    };
    if truncated {
        return Err(Error::Codec(format!(
            "a message larger than {max} bytes or with more than {max_fds} descriptors"
        )));
    }
    buf.truncate(len);
    Ok((buf, fds))
}
