//! Members into requests: chunks of the destination's batch size, each
//! encoded by the vendor file and split in halves while its body is over
//! the byte limit. Shared by the live run and the dry run, so both make the
//! same requests.
//!
//! In: the vendor, the list, the operation, the members and the limits.
//! Out: requests with the members they carry, and the members no request
//! can carry (alone over the byte limit, or refused by the encoder).

use super::config::Limits;
use super::vendor::{ListRef, Member, Op, Vendor};
use super::wire::WireRequest;

/// Code of a member that alone makes a request over the byte limit.
pub const TOO_LARGE: &str = "too_large";
/// Code of a member the vendor file cannot encode.
pub const UNENCODABLE: &str = "unencodable";

/// One encoded request.
#[derive(Clone, Debug)]
pub struct Encoded {
    pub members: Vec<Member>,
    pub request: WireRequest,
}

/// A member no request can carry.
#[derive(Clone, Debug, PartialEq)]
pub struct Unsendable {
    pub member: Member,
    pub code: &'static str,
    pub message: String,
}

/// Requests for `members` of `scope` (activation, audience), in order,
/// and the members left out.
pub fn encode(
    vendor: &dyn Vendor,
    scope: (&str, &str),
    list: Option<&ListRef>,
    op: Op,
    members: &[Member],
    limits: &Limits,
) -> (Vec<Encoded>, Vec<Unsendable>) {
    let mut encoded = Vec::new();
    let mut unsendable = Vec::new();
    for chunk in members.chunks(limits.batch_size.max(1)) {
        encode_within(
            vendor,
            scope,
            list,
            op,
            chunk,
            limits.max_bytes,
            &mut encoded,
            &mut unsendable,
        );
    }
    (encoded, unsendable)
}

fn encode_within(
    vendor: &dyn Vendor,
    scope: (&str, &str),
    list: Option<&ListRef>,
    op: Op,
    members: &[Member],
    max_bytes: Option<usize>,
    encoded: &mut Vec<Encoded>,
    unsendable: &mut Vec<Unsendable>,
) {
    if members.is_empty() {
        return;
    }
    let problem = match vendor.encode_for(scope.0, scope.1, list, op, members) {
        Ok(request) if max_bytes.is_none_or(|max| request.body.len() <= max) => {
            encoded.push(Encoded {
                members: members.to_vec(),
                request,
            });
            return;
        }
        Ok(request) => (
            TOO_LARGE,
            too_large(request.body.len(), max_bytes.unwrap_or(0)),
        ),
        Err(message) => (UNENCODABLE, message),
    };
    if let [member] = members {
        unsendable.push(Unsendable {
            member: member.clone(),
            code: problem.0,
            message: problem.1,
        });
        return;
    }
    let (left, right) = members.split_at(members.len() / 2);
    encode_within(
        vendor, scope, list, op, left, max_bytes, encoded, unsendable,
    );
    encode_within(
        vendor, scope, list, op, right, max_bytes, encoded, unsendable,
    );
}

fn too_large(bytes: usize, max: usize) -> String {
    format!(
        "the request carrying this member alone is {bytes} bytes, over the destination's limit of {max}"
    )
}
