create table note (id bigserial primary key, body text not null unique);
