"""What report and notice drivers send: evidence, abuse contacts, X-ARF v4 and ARF formats, the sent-journal, SMTP."""
