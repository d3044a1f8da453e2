//! The deployer: converges AWS to a desired [`Stack`](lb_model::stack::Stack). [`diff`] is pure:
//! from the desired stack and what exists (only resources carrying our ownership tags) to the
//! steps, in a safe order. Applying the steps through the SDK and the fake comes next.

pub mod diff;
