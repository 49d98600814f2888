//! The one-row `account` table: currency, credit and what has been spent.

use burncloud_service_api::{Account, Currency, Money};

use crate::values::args;
use crate::{Conn, DbError, DbResult};

/// The stored account: `credit` is what was granted in total, `None` for unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    pub currency: Currency,
    pub credit: Option<Money>,
    pub used: Money,
}

impl AccountRecord {
    pub fn to_account(self) -> Account {
        Account {
            currency: self.currency,
            balance: self.credit.map(|credit| credit.saturating_sub(self.used)),
            used: self.used,
        }
    }
}

pub fn get(connection: &Conn) -> DbResult<AccountRecord> {
    let (currency, credit, used): (String, Option<i64>, i64) = connection.engine().query_one(
        "SELECT currency, credit_nano, used_nano FROM account WHERE id = 1",
        args![],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let currency =
        Currency::parse(&currency).ok_or_else(|| DbError::Corrupt(format!("account.currency {currency:?}")))?;
    Ok(AccountRecord { currency, credit: credit.map(Money), used: Money(used) })
}

pub fn set_currency(connection: &Conn, currency: Currency) -> DbResult<()> {
    connection.engine().execute("UPDATE account SET currency = ?1 WHERE id = 1", args![currency.as_str()])?;
    Ok(())
}

/// Sets the total credit; `None` makes spending unlimited.
pub fn set_credit(connection: &Conn, credit: Option<Money>) -> DbResult<()> {
    connection.engine().execute("UPDATE account SET credit_nano = ?1 WHERE id = 1", args![credit.map(Money::nanos)])?;
    Ok(())
}
