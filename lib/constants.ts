// Numeric values are libotr 4.1's own (proto.h, message.h, instag.h), so codes can be
// compared with libotr's documentation. A test checks them against the compiled headers.

/** libotr's policy bits: which protocol versions a channel speaks and when it starts or requires encryption. */
export enum Policy {
  /** Never use OTR: messages pass through untouched. */
  NEVER = 0x00,
  /** Protocol version 1 (obsolete; libotr 4.1 no longer speaks it). */
  ALLOW_V1 = 0x01,
  /** Allow protocol version 2. */
  ALLOW_V2 = 0x02,
  /** Allow protocol version 3 (instance tags). */
  ALLOW_V3 = 0x04,
  /** Never send plaintext: writes wait (in order) until the channel is encrypted. */
  REQUIRE_ENCRYPTION = 0x08,
  /** Advertise OTR support with a whitespace tag appended to plaintext messages. */
  SEND_WHITESPACE_TAG = 0x10,
  /** Start the AKE when a contact's message carries the whitespace tag. */
  WHITESPACE_START_AKE = 0x20,
  /** Start the AKE when the contact sends an OTR error message. */
  ERROR_START_AKE = 0x40,
  /** Versions 2 and 3, started only by an explicit `init()` or the contact's query. */
  MANUAL = ALLOW_V2 | ALLOW_V3,
  /** Versions 2 and 3, advertised by the whitespace tag and started whenever possible (the default). */
  OPPORTUNISTIC = ALLOW_V2 | ALLOW_V3 | SEND_WHITESPACE_TAG | WHITESPACE_START_AKE | ERROR_START_AKE,
  /** Versions 2 and 3, encryption required, started whenever possible. */
  ALWAYS = ALLOW_V2 | ALLOW_V3 | REQUIRE_ENCRYPTION | WHITESPACE_START_AKE | ERROR_START_AKE,
}

/** What an OTR error message sent to the contact is about (the `code` given to `onError`). */
export enum ErrorCode {
  /** No error. */
  NONE = 0,
  /** Encrypting a message for the contact failed. */
  ENCRYPTION_ERROR = 1,
  /** The contact sent an encrypted message but we have no private session with them. */
  MSG_NOT_IN_PRIVATE = 2,
  /** The contact's encrypted message could not be read. */
  MSG_UNREADABLE = 3,
  /** The contact's message was malformed. */
  MSG_MALFORMED = 4,
}

/** The progress of the socialist millionaires' protocol (SMP), given to `onSmpEvent`. */
export enum SmpEvent {
  /** No event. */
  NONE = 0,
  /** An SMP message arrived that does not fit the exchange in progress; the exchange is aborted. */
  ERROR = 1,
  /** The exchange was aborted (by either side). */
  ABORT = 2,
  /** The contact deviated from the protocol; the exchange is aborted. */
  CHEATED = 3,
  /** The contact started SMP with a question: answer it with `smpRespond()` (or from `onSmp`). */
  ASK_FOR_ANSWER = 4,
  /** The contact started SMP without a question: give the shared secret with `smpRespond()` (or from `onSmp`). */
  ASK_FOR_SECRET = 5,
  /** A step of the exchange went through; the percentage says how far it is. */
  IN_PROGRESS = 6,
  /** Both sides gave the same secret (what that does to trust: docs/INTERPRETATION.md, SMP). */
  SUCCESS = 7,
  /** The secrets differed: trust is unchanged. */
  FAILURE = 8,
}

/** What libotr reports about a message, given to `onEvent` (with the message's text where there is one). */
export enum MessageEvent {
  /** No event. */
  NONE = 0,
  /** The policy requires encryption and the channel is not encrypted: the message is held and an AKE started. */
  ENCRYPTION_REQUIRED = 1,
  /** Encrypting the message failed: it was not sent. */
  ENCRYPTION_ERROR = 2,
  /** The contact ended the encrypted session: the message was not sent (`init()` or `finish()` first). */
  CONNECTION_ENDED = 3,
  /** Setting up the encrypted session (the AKE) failed. */
  SETUP_ERROR = 4,
  /** We received one of our own OTR messages back; it was ignored. */
  MSG_REFLECTED = 5,
  /** libotr sent a message again: the one it held while the AKE ran, once the session was encrypted. */
  MSG_RESENT = 6,
  /** An encrypted message arrived but there is no private session to read it. */
  RCVDMSG_NOT_IN_PRIVATE = 7,
  /** An encrypted message arrived that cannot be read (keys out of step). */
  RCVDMSG_UNREADABLE = 8,
  /** A malformed OTR message arrived. */
  RCVDMSG_MALFORMED = 9,
  /** The contact's heartbeat message arrived (log only). */
  LOG_HEARTBEAT_RCVD = 10,
  /** A heartbeat message was sent to the contact (log only). */
  LOG_HEARTBEAT_SENT = 11,
  /** The contact sent an OTR error message; its text is given. */
  RCVDMSG_GENERAL_ERR = 12,
  /** A plaintext message arrived while the session is encrypted; its text is given. */
  RCVDMSG_UNENCRYPTED = 13,
  /** An OTR message of a kind libotr does not know arrived. */
  RCVDMSG_UNRECOGNIZED = 14,
  /** A message arrived for another instance of our account; it was ignored. */
  RCVDMSG_FOR_OTHER_INSTANCE = 15,
}

/** Which of a contact's instances (`selectSession`) to use, besides a specific instance tag. */
export enum Instag {
  /** The instance with the most advanced session (encrypted before plaintext), most recent first. */
  BEST = 1,
  /** The instance we last exchanged a message with. */
  RECENT = 2,
  /** The instance we last received a message from. */
  RECENT_RECEIVED = 3,
  /** The instance we last sent a message to. */
  RECENT_SENT = 4,
}

// The Perl module's flat names (Protocol::OTR's :policies, :error_codes, :event_codes,
// :smp_event_codes and :instags export tags), for code being ported.
/** `Policy.NEVER` under Protocol::OTR's name. */
export const POLICY_NEVER = Policy.NEVER;
/** `Policy.ALLOW_V1` under Protocol::OTR's name. */
export const POLICY_ALLOW_V1 = Policy.ALLOW_V1;
/** `Policy.ALLOW_V2` under Protocol::OTR's name. */
export const POLICY_ALLOW_V2 = Policy.ALLOW_V2;
/** `Policy.ALLOW_V3` under Protocol::OTR's name. */
export const POLICY_ALLOW_V3 = Policy.ALLOW_V3;
/** `Policy.REQUIRE_ENCRYPTION` under Protocol::OTR's name. */
export const POLICY_REQUIRE_ENCRYPTION = Policy.REQUIRE_ENCRYPTION;
/** `Policy.SEND_WHITESPACE_TAG` under Protocol::OTR's name. */
export const POLICY_SEND_WHITESPACE_TAG = Policy.SEND_WHITESPACE_TAG;
/** `Policy.WHITESPACE_START_AKE` under Protocol::OTR's name. */
export const POLICY_WHITESPACE_START_AKE = Policy.WHITESPACE_START_AKE;
/** `Policy.ERROR_START_AKE` under Protocol::OTR's name. */
export const POLICY_ERROR_START_AKE = Policy.ERROR_START_AKE;
/** `Policy.MANUAL` under Protocol::OTR's name. */
export const POLICY_MANUAL = Policy.MANUAL;
/** `Policy.OPPORTUNISTIC` under Protocol::OTR's name. */
export const POLICY_OPPORTUNISTIC = Policy.OPPORTUNISTIC;
/** `Policy.ALWAYS` under Protocol::OTR's name. */
export const POLICY_ALWAYS = Policy.ALWAYS;
/** `Policy.OPPORTUNISTIC` under Protocol::OTR's name. */
export const POLICY_DEFAULT = Policy.OPPORTUNISTIC;

/** `ErrorCode.NONE` under Protocol::OTR's name. */
export const ERRCODE_NONE = ErrorCode.NONE;
/** `ErrorCode.ENCRYPTION_ERROR` under Protocol::OTR's name. */
export const ERRCODE_ENCRYPTION_ERROR = ErrorCode.ENCRYPTION_ERROR;
/** `ErrorCode.MSG_NOT_IN_PRIVATE` under Protocol::OTR's name. */
export const ERRCODE_MSG_NOT_IN_PRIVATE = ErrorCode.MSG_NOT_IN_PRIVATE;
/** `ErrorCode.MSG_UNREADABLE` under Protocol::OTR's name. */
export const ERRCODE_MSG_UNREADABLE = ErrorCode.MSG_UNREADABLE;
/** `ErrorCode.MSG_MALFORMED` under Protocol::OTR's name. */
export const ERRCODE_MSG_MALFORMED = ErrorCode.MSG_MALFORMED;

/** `SmpEvent.NONE` under Protocol::OTR's name. */
export const SMPEVENT_NONE = SmpEvent.NONE;
/** `SmpEvent.ERROR` under Protocol::OTR's name. */
export const SMPEVENT_ERROR = SmpEvent.ERROR;
/** `SmpEvent.ABORT` under Protocol::OTR's name. */
export const SMPEVENT_ABORT = SmpEvent.ABORT;
/** `SmpEvent.CHEATED` under Protocol::OTR's name. */
export const SMPEVENT_CHEATED = SmpEvent.CHEATED;
/** `SmpEvent.ASK_FOR_ANSWER` under Protocol::OTR's name. */
export const SMPEVENT_ASK_FOR_ANSWER = SmpEvent.ASK_FOR_ANSWER;
/** `SmpEvent.ASK_FOR_SECRET` under Protocol::OTR's name. */
export const SMPEVENT_ASK_FOR_SECRET = SmpEvent.ASK_FOR_SECRET;
/** `SmpEvent.IN_PROGRESS` under Protocol::OTR's name. */
export const SMPEVENT_IN_PROGRESS = SmpEvent.IN_PROGRESS;
/** `SmpEvent.SUCCESS` under Protocol::OTR's name. */
export const SMPEVENT_SUCCESS = SmpEvent.SUCCESS;
/** `SmpEvent.FAILURE` under Protocol::OTR's name. */
export const SMPEVENT_FAILURE = SmpEvent.FAILURE;

/** `MessageEvent.NONE` under Protocol::OTR's name. */
export const MSGEVENT_NONE = MessageEvent.NONE;
/** `MessageEvent.ENCRYPTION_REQUIRED` under Protocol::OTR's name. */
export const MSGEVENT_ENCRYPTION_REQUIRED = MessageEvent.ENCRYPTION_REQUIRED;
/** `MessageEvent.ENCRYPTION_ERROR` under Protocol::OTR's name. */
export const MSGEVENT_ENCRYPTION_ERROR = MessageEvent.ENCRYPTION_ERROR;
/** `MessageEvent.CONNECTION_ENDED` under Protocol::OTR's name. */
export const MSGEVENT_CONNECTION_ENDED = MessageEvent.CONNECTION_ENDED;
/** `MessageEvent.SETUP_ERROR` under Protocol::OTR's name. */
export const MSGEVENT_SETUP_ERROR = MessageEvent.SETUP_ERROR;
/** `MessageEvent.MSG_REFLECTED` under Protocol::OTR's name. */
export const MSGEVENT_MSG_REFLECTED = MessageEvent.MSG_REFLECTED;
/** `MessageEvent.MSG_RESENT` under Protocol::OTR's name. */
export const MSGEVENT_MSG_RESENT = MessageEvent.MSG_RESENT;
/** `MessageEvent.RCVDMSG_NOT_IN_PRIVATE` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_NOT_IN_PRIVATE = MessageEvent.RCVDMSG_NOT_IN_PRIVATE;
/** `MessageEvent.RCVDMSG_UNREADABLE` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_UNREADABLE = MessageEvent.RCVDMSG_UNREADABLE;
/** `MessageEvent.RCVDMSG_MALFORMED` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_MALFORMED = MessageEvent.RCVDMSG_MALFORMED;
/** `MessageEvent.LOG_HEARTBEAT_RCVD` under Protocol::OTR's name. */
export const MSGEVENT_LOG_HEARTBEAT_RCVD = MessageEvent.LOG_HEARTBEAT_RCVD;
/** `MessageEvent.LOG_HEARTBEAT_SENT` under Protocol::OTR's name. */
export const MSGEVENT_LOG_HEARTBEAT_SENT = MessageEvent.LOG_HEARTBEAT_SENT;
/** `MessageEvent.RCVDMSG_GENERAL_ERR` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_GENERAL_ERR = MessageEvent.RCVDMSG_GENERAL_ERR;
/** `MessageEvent.RCVDMSG_UNENCRYPTED` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_UNENCRYPTED = MessageEvent.RCVDMSG_UNENCRYPTED;
/** `MessageEvent.RCVDMSG_UNRECOGNIZED` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_UNRECOGNIZED = MessageEvent.RCVDMSG_UNRECOGNIZED;
/** `MessageEvent.RCVDMSG_FOR_OTHER_INSTANCE` under Protocol::OTR's name. */
export const MSGEVENT_RCVDMSG_FOR_OTHER_INSTANCE = MessageEvent.RCVDMSG_FOR_OTHER_INSTANCE;

/** `Instag.BEST` under Protocol::OTR's name. */
export const INSTAG_BEST = Instag.BEST;
/** `Instag.RECENT` under Protocol::OTR's name. */
export const INSTAG_RECENT = Instag.RECENT;
/** `Instag.RECENT_RECEIVED` under Protocol::OTR's name. */
export const INSTAG_RECENT_RECEIVED = Instag.RECENT_RECEIVED;
/** `Instag.RECENT_SENT` under Protocol::OTR's name. */
export const INSTAG_RECENT_SENT = Instag.RECENT_SENT;
