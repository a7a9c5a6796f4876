//! The only code that talks to AWS: credentials per account, SSM clients, observe and apply.
//! Filled by the controller issue.
